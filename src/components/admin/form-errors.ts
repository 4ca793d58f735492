import { TRPCClientError } from "@trpc/client";
import { describeError, errorInfo } from "./describe-error";

/** The parts of a zod issue the server sends in `error.data.zodError`. */
type WireIssue = {
  code?: string;
  path?: (string | number)[];
  message?: string;
  origin?: string;
  expected?: string;
  minimum?: number | string;
  maximum?: number | string;
  inclusive?: boolean;
};

function sentence(text: string): string {
  const t = text.trim();
  if (!t) return t;
  const first = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

function scaled(bound: number | string | undefined, unit: number): string {
  if (typeof bound !== "number") return String(bound);
  return String(Number((bound / unit).toPrecision(12)));
}

/**
 * Zod's default wording ("Too small: expected number to be >0") is for
 * developers. `unit` converts a bound to what the field shows (a field in
 * seconds for an input in ms has unit 1000).
 */
function issueText(issue: WireIssue, unit = 1): string {
  const { code, origin } = issue;
  if (code === "too_small" && origin === "number") {
    const min = scaled(issue.minimum, unit);
    return issue.inclusive ? `Must be at least ${min}.` : `Must be more than ${min}.`;
  }
  if (code === "too_big" && origin === "number") {
    const max = scaled(issue.maximum, unit);
    return issue.inclusive ? `Must be at most ${max}.` : `Must be less than ${max}.`;
  }
  if (code === "too_big" && origin === "string") return `Use at most ${issue.maximum} characters.`;
  if (code === "invalid_type" && issue.expected === "int") return "Must be a whole number.";
  if (code === "invalid_type" && issue.expected === "number") return "Enter a number.";
  return sentence(issue.message ?? "Invalid value.");
}

export type FormErrors = {
  /** Per input field (the first issue of each), keyed by the procedure's input name. */
  fields: Record<string, string>;
  /** What belongs to no single field: FORBIDDEN, an outage, an unknown field's issue. */
  form: string | null;
};

export const NO_ERRORS: FormErrors = { fields: {}, form: null };

/**
 * Splits a failed mutation into messages for its fields (VALIDATION with
 * `zodError`) and one for the form. `fieldNames` are the inputs the form
 * shows; `forbidden` says what the refused action needs; `units` maps an input
 * to the factor between what the server takes and what the field shows.
 */
export function formErrors(
  error: unknown,
  fieldNames: readonly string[],
  opts: { forbidden?: string; units?: Record<string, number> } = {},
): FormErrors {
  const { forbidden, units = {} } = opts;
  const info = errorInfo(error);
  if (info.appCode === "FORBIDDEN") {
    return { fields: {}, form: forbidden ? `Your role does not allow this: ${forbidden}` : describeError(error) };
  }
  const issues =
    info.appCode === "VALIDATION" && error instanceof TRPCClientError
      ? ((error.data as { zodError?: WireIssue[] } | undefined)?.zodError ?? [])
      : [];
  if (issues.length === 0) return { fields: {}, form: describeError(error) };
  const fields: Record<string, string> = {};
  const other: string[] = [];
  for (const issue of issues) {
    const key = issue.path?.[0];
    if (typeof key === "string" && fieldNames.includes(key)) fields[key] ??= issueText(issue, units[key]);
    else other.push(issueText(issue));
  }
  return { fields, form: other.length > 0 ? other.join(" ") : null };
}

/** Parses a number input; undefined when it is not a finite number. */
export function parseNumber(text: string): number | undefined {
  if (text.trim() === "") return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** The server's rule for reasons (`ZReason`), checked before a round trip. */
export function reasonError(reason: string): string | undefined {
  return reason.trim().length < 3 ? "Say why, in at least 3 characters." : undefined;
}

/** The same errors less one field's: an edited field no longer claims to be invalid. */
export function withoutField(errors: FormErrors, name: string): FormErrors {
  if (!(name in errors.fields)) return errors;
  const fields = { ...errors.fields };
  delete fields[name];
  return { ...errors, fields };
}
