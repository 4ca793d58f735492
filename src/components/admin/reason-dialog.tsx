import { useState, type ComponentProps, type FormEvent, type ReactNode, type RefObject } from "react";
import type { UseMutationOptions } from "@tanstack/react-query";
import type { LucideIcon } from "lucide-react";
import { Button } from "~/components/ui/button";
import {
  Dialog,
  DialogClose,
  DialogContent,
  DialogDescription,
  DialogFooter,
  DialogHeader,
  DialogTitle,
  DialogTrigger,
} from "~/components/ui/dialog";
import { FormAlert } from "./form-alert";
import type { FormErrors } from "./form-errors";
import { ReasonField } from "./reason-field";
import { useReasonForm, type Checked, type ReasonFormConfig } from "./reason-form";

/**
 * `useReasonForm` in a dialog. The dialog cannot close while its change is on
 * its way; each opening starts clean (`onOpen` resets what else the form
 * holds), and a saved change closes it.
 */
export function useReasonDialog<TData, TError, TVariables, TContext>(
  options: UseMutationOptions<TData, TError, TVariables, TContext>,
  config: ReasonFormConfig,
  onOpen?: () => void,
) {
  const form = useReasonForm(options, config);
  const [open, setOpen] = useState(false);

  function onOpenChange(next: boolean) {
    if (form.pending) return;
    setOpen(next);
    if (next) {
      onOpen?.();
      form.clear();
    }
  }

  function submit(
    event: FormEvent<HTMLFormElement>,
    check: (reason: string) => Checked<TVariables>,
    onSuccess: (data: TData) => void,
  ) {
    form.submit(event, check, (data) => {
      onSuccess(data);
      setOpen(false);
    });
  }

  return { ...form, open, onOpenChange, submit };
}

/** What `ReasonDialog` reads of `useReasonDialog`. */
type ReasonDialogState = {
  open: boolean;
  onOpenChange: (next: boolean) => void;
  pending: boolean;
  errors: FormErrors;
  reasonField: ComponentProps<typeof ReasonField>;
};

/**
 * A dialog that asks for a reason (after any `children` fields) and submits a
 * change. With `trigger` it opens from its own button, which Radix focuses
 * again on close; without one, `returnFocus` names what opened it.
 */
export function ReasonDialog({
  dialog,
  trigger,
  returnFocus,
  title,
  description,
  descriptionId,
  alertId,
  onSubmit,
  submitLabel,
  pendingLabel,
  destructive = false,
  children,
}: {
  dialog: ReasonDialogState;
  /** The button that opens it (outline by default; `default` for a page's main action). */
  trigger?: { icon: LucideIcon; label: string; variant?: "outline" | "default"; disabled?: boolean; className?: string };
  returnFocus?: RefObject<HTMLElement | null>;
  title: ReactNode;
  description: ReactNode;
  descriptionId: string;
  alertId?: string;
  onSubmit: (event: FormEvent<HTMLFormElement>) => void;
  submitLabel: string;
  pendingLabel: string;
  destructive?: boolean;
  children?: ReactNode;
}) {
  const { pending } = dialog;
  return (
    <Dialog open={dialog.open} onOpenChange={dialog.onOpenChange}>
      {trigger ? (
        <DialogTrigger asChild>
          <Button variant={trigger.variant ?? "outline"} size="sm" disabled={trigger.disabled} className={trigger.className}>
            <trigger.icon aria-hidden="true" />
            {trigger.label}
          </Button>
        </DialogTrigger>
      ) : null}
      <DialogContent
        aria-describedby={descriptionId}
        onCloseAutoFocus={
          returnFocus
            ? (event) => {
                event.preventDefault();
                returnFocus.current?.focus();
              }
            : undefined
        }
      >
        <DialogHeader>
          <DialogTitle>{title}</DialogTitle>
          <DialogDescription id={descriptionId}>{description}</DialogDescription>
        </DialogHeader>
        <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
          <FormAlert id={alertId} message={dialog.errors.form} />
          {children}
          <ReasonField {...dialog.reasonField} />
          <DialogFooter>
            <DialogClose asChild>
              <Button variant="outline" disabled={pending}>
                Cancel
              </Button>
            </DialogClose>
            <Button type="submit" variant={destructive ? "destructive" : "default"} disabled={pending}>
              {pending ? pendingLabel : submitLabel}
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}
