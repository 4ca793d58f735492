import { ClipboardList, Coins, Gauge, KeyRound, LayoutDashboard, ListChecks, RotateCcw, ShoppingBag, Users, Wallet, Zap, type LucideIcon } from "lucide-react";

export type NavItem = {
  label: string;
  icon: LucideIcon;
  /** Absent while the page does not exist yet: shown, but not a link. */
  href?: string;
};

export const NAV_ITEMS: readonly NavItem[] = [
  { label: "Overview", href: "/admin", icon: LayoutDashboard },
  { label: "Circuits", href: "/admin/circuits", icon: Zap },
  { label: "Limits & switches", href: "/admin/limits", icon: Gauge },
  { label: "Refunds", href: "/admin/refunds", icon: RotateCcw },
  { label: "Flash sales", href: "/admin/sales", icon: ShoppingBag },
  { label: "Operations", href: "/admin/operations", icon: ListChecks },
  { label: "Accounts", href: "/admin/accounts", icon: Wallet },
  { label: "Audit", href: "/admin/audit", icon: ClipboardList },
  { label: "Credit types", href: "/admin/credit-types", icon: Coins },
  { label: "API keys", href: "/admin/keys", icon: KeyRound },
  { label: "Users", href: "/admin/users", icon: Users },
];
