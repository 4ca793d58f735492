/** @type {import('next').NextConfig} */
const nextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  serverExternalPackages: ["pg", "@prisma/client", "@prisma/adapter-pg", "ioredis", "redlock", "pino", "prom-client"],
  typedRoutes: false,
};

export default nextConfig;
