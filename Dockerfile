# One image for both the API and the worker (docker-compose.yml picks the command).
# Build stage: full dependencies, Prisma client (generated offline, like everywhere else), dist/.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN node scripts/prisma-generate.mjs \
 && node scripts/build.mjs \
 && npm prune --omit=dev --no-audit --no-fund

# Runtime stage: production dependencies, compiled code, and prisma/ (the migrations the API
# applies at start; schema.prisma also marks the root the code finds them from).
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json /app/package-lock.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/prisma ./prisma
COPY --from=build --chown=node:node /app/dist ./dist
USER node
EXPOSE 3000
CMD ["node", "dist/apps/api/src/main.js"]
