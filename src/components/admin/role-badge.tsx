import { Badge } from "~/components/ui/badge";

const VARIANT = { admin: "default", operator: "secondary", viewer: "outline" } as const;

export function RoleBadge({ role }: { role: string }) {
  const variant = role in VARIANT ? VARIANT[role as keyof typeof VARIANT] : "outline";
  return (
    <Badge variant={variant} title={`Role: ${role}`}>
      {role}
    </Badge>
  );
}
