"use client";

import type { CSSProperties } from "react";
import { Toaster as Sonner } from "sonner";

/**
 * Sonner's toaster in the dashboard's colours: its own palette is replaced by
 * the theme tokens (readable in light and dark; sonner's green on pale green
 * falls short of 4.5:1), so a toast follows the theme the page is in.
 */
const TOKENS = {
  "--normal-bg": "var(--color-card)",
  "--normal-text": "var(--color-foreground)",
  "--normal-border": "var(--color-border)",
  "--success-bg": "var(--color-success-soft)",
  "--success-text": "var(--color-success-text)",
  "--success-border": "var(--color-success-line)",
  "--error-bg": "var(--color-danger-soft)",
  "--error-text": "var(--color-danger-text)",
  "--error-border": "var(--color-danger-line)",
  "--warning-bg": "var(--color-warning-soft)",
  "--warning-text": "var(--color-warning-text)",
  "--warning-border": "var(--color-warning-line)",
} as CSSProperties;

export function Toaster() {
  return <Sonner position="bottom-right" closeButton richColors duration={6000} style={TOKENS} />;
}
