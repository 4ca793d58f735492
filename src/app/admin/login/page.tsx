import type { Metadata } from "next";
import { redirect } from "next/navigation";
import { Zap } from "lucide-react";
import { getSessionUser } from "~/trpc/server";
import { LoginForm } from "~/components/admin/login-form";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "~/components/ui/card";

export const metadata: Metadata = { title: "Sign in" };

export default async function LoginPage() {
  if (await getSessionUser()) redirect("/admin");
  return (
    <main className="flex min-h-dvh items-center justify-center bg-muted px-4 py-10">
      <div className="flex w-full max-w-sm flex-col gap-6">
        <div className="flex items-center justify-center gap-2 text-lg font-semibold tracking-tight">
          <span className="flex size-7 items-center justify-center rounded-md bg-primary text-primary-foreground">
            <Zap aria-hidden="true" className="size-4" />
          </span>
          FlashPoints
        </div>
        <Card className="gap-5 py-6">
          <CardHeader className="px-6">
            <CardTitle asChild>
              <h1 className="text-lg">Sign in</h1>
            </CardTitle>
            <CardDescription>Operator dashboard. Use the account an administrator created for you.</CardDescription>
          </CardHeader>
          <CardContent className="px-6">
            <LoginForm />
          </CardContent>
        </Card>
      </div>
    </main>
  );
}
