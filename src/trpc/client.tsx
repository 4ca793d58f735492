"use client";

import { useState, type ReactNode } from "react";
import { QueryClientProvider, type QueryClient } from "@tanstack/react-query";
import { createTRPCClient, httpBatchLink, httpLink, splitLink } from "@trpc/client";
import { MAX_BATCH_ITEMS } from "~/client";
import { createTRPCContext } from "@trpc/tanstack-react-query";
import type { AppRouter } from "~/server/api/root";
import { makeQueryClient } from "./query-client";

export const { TRPCProvider, useTRPC, useTRPCClient } = createTRPCContext<AppRouter>();

let browserQueryClient: QueryClient | undefined;

function getQueryClient(): QueryClient {
  // On the server every render gets its own client (no data shared between
  // requests); in the browser one client lives for the page's lifetime, so a
  // re-render during suspense does not throw the cache away.
  if (typeof window === "undefined") return makeQueryClient();
  browserQueryClient ??= makeQueryClient();
  return browserQueryClient;
}

function apiUrl(): string {
  // Same origin in the browser. Client components also render once on the
  // server, where a relative URL cannot be fetched; queries do not run there,
  // but the link still needs an absolute URL to be built.
  if (typeof window !== "undefined") return "/api/trpc";
  return `http://127.0.0.1:${process.env.PORT ?? 3000}/api/trpc`;
}

export function TRPCReactProvider({ children }: { children: ReactNode }) {
  const queryClient = getQueryClient();
  const [trpcClient] = useState(() =>
    createTRPCClient<AppRouter>({
      // No transformer: the wire is plain JSON, the same as other clients see.
      // Sign-in never travels in a batch (the server refuses it there).
      links: [
        splitLink({
          condition: (op) => op.path === "auth.login",
          true: httpLink({ url: apiUrl() }),
          false: httpBatchLink({ url: apiUrl(), maxItems: MAX_BATCH_ITEMS }),
        }),
      ],
    }),
  );
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        {children}
      </TRPCProvider>
    </QueryClientProvider>
  );
}
