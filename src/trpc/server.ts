import "server-only";
import { cache } from "react";
import { cookies, headers } from "next/headers";
import { redirect } from "next/navigation";
import { createCaller } from "~/server/api/root";
import { createContextInner } from "~/server/api/context";
import { getDeps } from "~/server/infra/deps";
import { sessionCookieName } from "~/server/identity/sessions";
import { SECURE_REQUEST_HEADER } from "~/server/http/client-info";

/**
 * The router, called in-process by server components with the visitor's
 * session: the same procedures and role checks as over HTTP. `cache` scopes it
 * to one request, so a layout and its page share one session lookup.
 */
export const getServerCaller = cache(async () => {
  const [cookieStore, headerList] = await Promise.all([cookies(), headers()]);
  return createCaller(
    createContextInner({
      deps: getDeps(),
      sessionToken: cookieStore.get(sessionCookieName(headerList.get(SECURE_REQUEST_HEADER) === "1"))?.value ?? null,
      requestId: headerList.get("x-request-id"),
      userAgent: headerList.get("user-agent"),
    }),
  );
});

/** The signed-in operator, or null. */
export const getSessionUser = cache(async () => (await getServerCaller()).auth.me());

export type SessionUser = NonNullable<Awaited<ReturnType<typeof getSessionUser>>>;

/**
 * For every dashboard page, not only the layout: Next keeps a shared layout
 * mounted across client navigations, so the page itself must check too.
 */
export async function requireSessionUser(): Promise<SessionUser> {
  const user = await getSessionUser();
  if (!user) redirect("/admin/login");
  return user;
}
