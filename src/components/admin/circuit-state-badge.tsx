import { CircleCheck, CircleDashed, CircleX } from "lucide-react";
import { Badge } from "~/components/ui/badge";

export type CircuitStateName = "CLOSED" | "OPEN" | "HALF_OPEN";

const LOOK = {
  CLOSED: { variant: "success", Icon: CircleCheck, label: "CLOSED" },
  HALF_OPEN: { variant: "warning", Icon: CircleDashed, label: "HALF_OPEN" },
  OPEN: { variant: "destructive", Icon: CircleX, label: "OPEN" },
} as const;

/** Colour plus an icon and the state's name, so colour is never the only cue. */
export function CircuitStateBadge({ state }: { state: CircuitStateName }) {
  const { variant, Icon, label } = LOOK[state];
  return (
    <Badge variant={variant} data-testid="circuit-state" className="font-mono">
      <Icon aria-hidden="true" />
      {label}
    </Badge>
  );
}

export const STATE_HELP: Record<CircuitStateName, string> = {
  OPEN: "Refuse every call with 503 CIRCUIT_OPEN.",
  HALF_OPEN: "Let only probe calls through (the probe share of calls); refuse the rest.",
  CLOSED: "Let every call through; failures do not open it.",
};
