import { generatePrismaClient } from './lib.mjs';
generatePrismaClient();
