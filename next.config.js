/** @type {import('next').NextConfig} */
const nextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  serverExternalPackages: ["pg", "@prisma/client", "@prisma/adapter-pg", "ioredis", "redlock", "pino", "prom-client"],
  typedRoutes: false,
  // `npm test` type-checks the whole project (tests included) in its own step;
  // the build need not do it again.
  typescript: { ignoreBuildErrors: true },
};

export default nextConfig;
