import { Controller, Get, Header } from '@nestjs/common';
import { Public } from '../auth/principal.js';
import { DASHBOARD_HTML, DASHBOARD_JS } from './page.js';

/**
 * The operator's dashboard: a plain page and a small script over the admin routes (no build step,
 * nothing fetched from the internet). The admin key is pasted into the page and kept in the
 * browser's session storage only; the page itself is public and holds no data.
 */
@Public()
@Controller('dashboard')
export class DashboardController {
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header(
    'Content-Security-Policy',
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  )
  @Header('Cache-Control', 'no-store')
  page() {
    return DASHBOARD_HTML;
  }

  @Get('app.js')
  @Header('Content-Type', 'application/javascript; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  script() {
    return DASHBOARD_JS;
  }
}
