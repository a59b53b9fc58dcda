export const SCOPES = [
  'datasets:read',
  'datasets:write',
  'models:read',
  'models:write',
  'jobs:read',
  'jobs:write',
  'webhooks:read',
  'webhooks:write',
  'keys:read',
  'keys:write',
] as const;

export type Scope = (typeof SCOPES)[number];
