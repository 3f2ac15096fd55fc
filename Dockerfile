# The relay image: one image, every role (`docker run relay ingress`, `... projector`, ...).
# docker-compose.yml builds it once and runs each role from it.

# ---- build: compile TypeScript into dist/ ----------------------------------------------------
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency needs an install script to build or run (package.json's allowScripts denies them).
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies, compiled code, schemas and migrations -----------------
FROM node:20-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
# Read at run time relative to the project root (dist/config/paths.js resolves ../../).
COPY schemas ./schemas
COPY migrations ./migrations
USER node
EXPOSE 8080
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["all"]
