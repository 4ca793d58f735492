import type { ReactNode } from "react";
import { Input } from "~/components/ui/input";
import { FormField } from "./form-field";

/** A required number input under its label, hint and error; `name` is the procedure's input name. */
export function NumberField({
  id,
  name,
  label,
  hint,
  error,
  value,
  onChange,
  readOnly,
  step,
  inputMode,
}: {
  id: string;
  name: string;
  label: ReactNode;
  hint: ReactNode;
  error: string | undefined;
  value: string;
  onChange: (value: string) => void;
  readOnly: boolean;
  step: string;
  inputMode: "decimal" | "numeric";
}) {
  return (
    <FormField id={id} label={label} hint={hint} error={error}>
      {(control) => (
        <Input
          {...control}
          name={name}
          type="number"
          inputMode={inputMode}
          step={step}
          required
          value={value}
          readOnly={readOnly}
          onChange={(e) => onChange(e.target.value)}
        />
      )}
    </FormField>
  );
}
