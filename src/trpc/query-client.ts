import { QueryClient } from "@tanstack/react-query";
import { TRPCClientError } from "@trpc/client";

/** HTTP status of a failed call when the server answered, else undefined (network error). */
function httpStatusOf(error: unknown): number | undefined {
  if (error instanceof TRPCClientError) {
    const status = (error.data as { httpStatus?: unknown } | undefined)?.httpStatus;
    return typeof status === "number" ? status : undefined;
  }
  return undefined;
}

export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 30_000,
        // 4xx answers (signed out, forbidden, invalid input, rate limited) do not
        // get better by asking again at once; 5xx and network errors might.
        retry: (failureCount, error) => {
          const status = httpStatusOf(error);
          if (status !== undefined && status < 500) return false;
          return failureCount < 2;
        },
      },
      mutations: { retry: false },
    },
  });
}
