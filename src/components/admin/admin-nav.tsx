"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";
import { cn } from "~/components/ui/cn";
import { NAV_ITEMS } from "./nav-items";

function isCurrent(pathname: string, href: string): boolean {
  if (href === "/admin") return pathname === "/admin";
  return pathname === href || pathname.startsWith(`${href}/`);
}

const itemClass = "flex h-8 items-center gap-2 rounded-md px-2 text-sm [&_svg]:size-4 [&_svg]:shrink-0";

export function AdminNav() {
  const pathname = usePathname();
  return (
    <nav aria-label="Main">
      <ul className="flex gap-1 overflow-x-auto md:flex-col">
        {NAV_ITEMS.map(({ label, href, icon: Icon }) => (
          // Narrow screens scroll this list sideways: keep it to pages that exist.
          <li key={label} className={cn("shrink-0", !href && "hidden md:block")}>
            {href ? (
              <Link
                href={href}
                aria-current={isCurrent(pathname, href) ? "page" : undefined}
                className={cn(
                  itemClass,
                  "font-medium text-foreground outline-none hover:bg-muted focus-visible:outline-2 focus-visible:outline-offset-1 focus-visible:outline-ring",
                  "aria-[current=page]:bg-primary-soft aria-[current=page]:text-primary-soft-foreground",
                )}
              >
                <Icon aria-hidden="true" />
                {label}
              </Link>
            ) : (
              <span className={cn(itemClass, "cursor-default text-muted-foreground")}>
                <Icon aria-hidden="true" />
                {label}
                <span className="sr-only">(coming soon)</span>
                <span aria-hidden="true" className="ml-auto rounded border border-border px-1 text-[11px] leading-4">
                  soon
                </span>
              </span>
            )}
          </li>
        ))}
      </ul>
    </nav>
  );
}
