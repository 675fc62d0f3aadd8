import { registerAdminRoutes } from './api-admin.js';
import { registerAuthRoutes } from './api-auth.js';
import { registerDataRoutes } from './api-data.js';
import { registerSqlRoutes } from './api-sql.js';
import { registerUpdateRoutes } from './api-update.js';
import { Metrics } from './metrics.js';
import { PanelSettings } from './panel-settings.js';
import { SECURITY_HEADERS } from './respond.js';
import { HANDLED, Router } from './router.js';
import { StaticFiles } from './static.js';
import type { Deps } from './types.js';

export { handleEditor, handleEditorUpgrade, isEditorPath } from './editor.js';

/**
 * The panel, the console's API, /metrics and their files: loaded by server.ts at the first request
 * that is not /healthz, so a gateway nobody browses never holds their code (RSS target).
 */
export function buildRoutes(base: Omit<Deps, 'settings' | 'statics'>, dataDir: string): { router: Router; deps: Deps } {
  const deps: Deps = { ...base, settings: new PanelSettings(dataDir), statics: new StaticFiles() };
  const router = new Router();
  const metrics = new Metrics(deps);
  registerAuthRoutes(router, deps);
  registerDataRoutes(router, deps);
  registerAdminRoutes(router, deps);
  registerSqlRoutes(router, deps);
  registerUpdateRoutes(router, deps);
  router.get(
    '/metrics',
    'technician',
    async ({ res }) => {
      const m = await metrics.render();
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': m.type, 'cache-control': 'no-store' });
      res.end(m.body);
      return HANDLED;
    },
    { token: true },
  );
  return { router, deps };
}
