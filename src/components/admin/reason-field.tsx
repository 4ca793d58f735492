import { Textarea } from "~/components/ui/textarea";
import { FormField } from "./form-field";

/** Every intervention carries a reason; it is what the audit log shows next to the change. */
export function ReasonField({
  id,
  value,
  onChange,
  error,
  readOnly,
}: {
  id: string;
  value: string;
  onChange: (value: string) => void;
  error?: string | undefined;
  readOnly?: boolean;
}) {
  return (
    <FormField id={id} label="Reason" hint="Required. Recorded in the audit log with your name." error={error}>
      {(control) => (
        <Textarea
          {...control}
          name="reason"
          required
          rows={2}
          maxLength={500}
          value={value}
          readOnly={readOnly}
          onChange={(e) => onChange(e.target.value)}
        />
      )}
    </FormField>
  );
}
