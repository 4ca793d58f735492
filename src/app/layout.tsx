import type { Metadata, Viewport } from "next";
import type { ReactNode } from "react";
import { cookies } from "next/headers";
import { TRPCReactProvider } from "~/trpc/client";
import { Toaster } from "~/components/ui/toaster";
import { parseTheme, THEME_COOKIE, themeAttribute } from "~/components/theme/theme";
import "./globals.css";

export const metadata: Metadata = {
  title: { default: "FlashPoints", template: "%s · FlashPoints" },
  description: "Operator dashboard of the FlashPoints points service",
  // An internal console: keep it out of search engines.
  robots: { index: false, follow: false },
};

export const viewport: Viewport = {
  themeColor: [
    { media: "(prefers-color-scheme: light)", color: "#ffffff" },
    { media: "(prefers-color-scheme: dark)", color: "#0c0c0e" },
  ],
  colorScheme: "light dark",
};

export default async function RootLayout({ children }: { children: ReactNode }) {
  // Rendered in the operator's theme from the first byte (the cookie the theme menu sets).
  const theme = parseTheme((await cookies()).get(THEME_COOKIE)?.value);
  return (
    <html lang="en" data-theme={themeAttribute(theme)}>
      <body>
        <TRPCReactProvider>{children}</TRPCReactProvider>
        {/* Results of actions; each is also confirmed in place, in a live region. */}
        <Toaster />
      </body>
    </html>
  );
}
