// redlock 5's package.json `exports` hides its .d.ts from TypeScript's
// resolution; this points the bare specifier at those types. At run time
// "redlock" resolves normally, to the package's ESM build.
declare module "redlock" {
  export * from "redlock-types";
  export { default } from "redlock-types";
}
