import type { ReactNode } from "react";
import { Label } from "~/components/ui/label";
import { cn } from "~/components/ui/cn";

export type FieldControlProps = {
  id: string;
  "aria-invalid": true | undefined;
  "aria-describedby": string | undefined;
};

/**
 * A labelled input with its hint and its error beneath it; the control gets
 * the ids that tie them together, so a screen reader reads the error with it.
 */
export function FormField({
  id,
  label,
  hint,
  error,
  className,
  children,
}: {
  id: string;
  label: ReactNode;
  hint?: ReactNode;
  error?: string | undefined;
  className?: string;
  children: (control: FieldControlProps) => ReactNode;
}) {
  const hintId = hint ? `${id}-hint` : undefined;
  const errorId = error ? `${id}-error` : undefined;
  const describedBy = [errorId, hintId].filter(Boolean).join(" ") || undefined;
  return (
    <div className={cn("flex flex-col gap-1.5", className)}>
      <Label htmlFor={id}>{label}</Label>
      {children({ id, "aria-invalid": error ? true : undefined, "aria-describedby": describedBy })}
      {error ? (
        <p id={errorId} className="text-xs font-medium text-destructive" data-testid={`${id}-error`}>
          {error}
        </p>
      ) : null}
      {hint ? (
        <p id={hintId} className="text-xs text-muted-foreground">
          {hint}
        </p>
      ) : null}
    </div>
  );
}

/**
 * Moves focus to the first field, in form order, that has an error.
 * `fieldIds` maps each input name to its element id.
 */
export function focusFirstError(fieldIds: Record<string, string>, errors: Record<string, string | undefined>): void {
  const first = Object.keys(fieldIds).find((name) => errors[name]);
  if (first) document.getElementById(fieldIds[first] ?? "")?.focus();
}
