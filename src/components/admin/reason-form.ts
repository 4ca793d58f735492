import { useState, type FormEvent } from "react";
import { useMutation, type UseMutationOptions } from "@tanstack/react-query";
import { focusFirstError } from "./form-field";
import { formErrors, NO_ERRORS, reasonError, withoutField, type FormErrors } from "./form-errors";

/** What a form's own check makes of its inputs: the mutation's input, or why it cannot be sent. */
export type Checked<TVariables> = { send: TVariables } | { fields: Record<string, string>; form?: string };

export type ReasonFormConfig = {
  /** Each input's element id, in form order, keyed by the procedure's input name; `reason` is one of them. */
  ids: Record<string, string> & { reason: string };
  /** What the refused action needs, said when the server answers FORBIDDEN. */
  forbidden: string;
  /** Factors between what the server takes and what a field shows (see `formErrors`). */
  units?: Record<string, number>;
};

/**
 * One admin intervention: a mutation that carries a reason. The reason and the
 * inputs are checked before any round trip; the server's VALIDATION issues land
 * next to their fields, anything else (FORBIDDEN, an outage) above the form, and
 * focus goes to the first field in error.
 */
export function useReasonForm<TData, TError, TVariables, TContext>(
  options: UseMutationOptions<TData, TError, TVariables, TContext>,
  { ids, forbidden, units }: ReasonFormConfig,
) {
  const mutation = useMutation(options);
  const [reason, setReason] = useState("");
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const pending = mutation.isPending;

  /** An edited field no longer claims to be invalid. */
  function edited(name: string) {
    setErrors((e) => withoutField(e, name));
  }

  /** Back to an empty reason, no errors and an idle mutation. */
  function clear() {
    setReason("");
    setErrors(NO_ERRORS);
    mutation.reset();
  }

  /** `check` gets the trimmed reason; the form is sent only when it and the reason pass. */
  function submit(
    event: FormEvent<HTMLFormElement>,
    check: (reason: string) => Checked<TVariables>,
    onSuccess: (data: TData) => void,
  ) {
    event.preventDefault();
    if (pending) return;
    const checked = check(reason.trim());
    const reasonProblem = reasonError(reason);
    if ("send" in checked && !reasonProblem) {
      setErrors(NO_ERRORS);
      mutation.mutate(checked.send, {
        onSuccess: (data) => onSuccess(data),
        onError: (error) => {
          const next = formErrors(error, Object.keys(ids), units ? { forbidden, units } : { forbidden });
          setErrors(next);
          focusFirstError(ids, next.fields);
        },
      });
      return;
    }
    const fields = "send" in checked ? {} : { ...checked.fields };
    if (reasonProblem) fields.reason = reasonProblem;
    // A message for the whole form only when no field has one to show.
    const form = "send" in checked || Object.keys(fields).length > 0 ? null : (checked.form ?? null);
    setErrors({ fields, form });
    focusFirstError(ids, fields);
  }

  return {
    pending,
    errors,
    edited,
    clear,
    submit,
    setReason,
    /** Props for `ReasonField`. */
    reasonField: {
      id: ids.reason,
      value: reason,
      onChange: (value: string) => {
        setReason(value);
        edited("reason");
      },
      error: errors.fields.reason,
      readOnly: pending,
    },
  };
}

export type ReasonForm = ReturnType<typeof useReasonForm>;
