/**
 * The dashboard's colour theme: the operator's choice, kept in a cookie so the
 * server renders the page in it (no flash of the other theme, no inline script).
 * "system" follows the device's preference through CSS `color-scheme`.
 */
export const THEMES = ["system", "light", "dark"] as const;
export type Theme = (typeof THEMES)[number];

export const THEME_COOKIE = "fp-theme";

export function parseTheme(value: string | undefined): Theme {
  return (THEMES as readonly string[]).includes(value ?? "") ? (value as Theme) : "system";
}

/** The `data-theme` attribute of <html> for a theme: none for "system". */
export function themeAttribute(theme: Theme): "light" | "dark" | undefined {
  return theme === "system" ? undefined : theme;
}
