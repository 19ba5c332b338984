// The broker client runs on the server only, and its ZeroMQ binding is a
// native module: Next.js must load it from node_modules, not bundle it.
/** @type {import('next').NextConfig} */
const config = {
  serverExternalPackages: ['zeromq', '@jobq/client'],
  // The page is opened as http://127.0.0.1:PORT (and localhost).
  allowedDevOrigins: ['127.0.0.1', 'localhost'],
  agentRules: false,
  experimental: { agentUpgrade: false },
};
export default config;
