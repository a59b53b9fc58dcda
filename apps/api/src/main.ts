import { closeOnSignals } from '@app/common';
import { loadConfig } from '@app/config';
import { startApi } from './bootstrap.js';

const config = loadConfig();
const { app, url, adminKey } = await startApi(config);
closeOnSignals(app);
// One machine-readable line that the start script and the tests wait for. A generated admin key
// is shown here once, as it is never retrievable again.
process.stdout.write(
  `${JSON.stringify({
    event: 'api.listening',
    url,
    docs: `${url}/docs`,
    admin_key_source: adminKey.kind,
    ...(adminKey.kind === 'generated' ? { admin_key: adminKey.secret } : {}),
  })}\n`,
);
