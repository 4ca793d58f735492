import "server-only";
import { cache, createElement, type ReactNode } from "react";
import { dehydrate, HydrationBoundary, type QueryClient, type QueryKey } from "@tanstack/react-query";
import { createTRPCOptionsProxy } from "@trpc/tanstack-react-query";
import { makeQueryClient } from "./query-client";
import { cookies, headers } from "next/headers";
import { redirect } from "next/navigation";
import { appRouter, createCaller, type AppRouter } from "~/server/api/root";
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

/**
 * Prefetching for server components (tRPC's hydration helpers): one query
 * client per request; `trpc.x.queryOptions(...)` calls the router in-process
 * with the visitor's session; `<HydrateClient>` hands what was fetched to the
 * browser's React Query cache, so client components start with it.
 */
export const getQueryClient = cache(makeQueryClient);

const getContext = cache(async () => {
  const [cookieStore, headerList] = await Promise.all([cookies(), headers()]);
  return createContextInner({
    deps: getDeps(),
    sessionToken: cookieStore.get(sessionCookieName(headerList.get(SECURE_REQUEST_HEADER) === "1"))?.value ?? null,
    requestId: headerList.get("x-request-id"),
    userAgent: headerList.get("user-agent"),
  });
});

export const trpc = createTRPCOptionsProxy<AppRouter>({ ctx: getContext, router: appRouter, queryClient: getQueryClient });

/** Fetches into this request's query client; a failed read is left to the browser (which shows it and retries). */
export async function prefetch(options: { queryKey: QueryKey; queryFn?: unknown }): Promise<void> {
  await getQueryClient().prefetchQuery(options as Parameters<QueryClient["prefetchQuery"]>[0]);
}

export function HydrateClient({ children }: { children: ReactNode }) {
  return createElement(HydrationBoundary, { state: dehydrate(getQueryClient()) }, children);
}
