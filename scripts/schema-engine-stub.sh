#!/bin/sh
# Prisma's CLI checks that a schema engine exists before `generate`, which never runs it; the real one can't be downloaded here.
echo "schema engine unavailable offline: migrations are applied by libs/db/src/migrate.ts" >&2; exit 1
