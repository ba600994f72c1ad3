# Servman image: one image for every role; the compose file picks the role with `command`.
FROM node:20-bookworm-slim

# The example `echo` task in conf/servman.json runs python3, and the config check refuses to start
# a node whose task program is not on PATH.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/*

# The project root: the default config lookup is conf/servman.json relative to the working dir.
WORKDIR /app

# Dependencies first so their layer stays cached across source edits. --ignore-scripts because
# `prepare` compiles sources that are not copied yet; the build runs explicitly below.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts

COPY . .
# tsc (a devDependency) builds dist/; only then can devDependencies go. --ignore-scripts keeps
# prune from re-running `prepare` once tsc is gone.
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts \
 && npm cache clean --force

ENV NODE_ENV=production
# The files stay root-owned: the server only reads them, and instances run unprivileged too.
USER node

EXPOSE 8080
ENTRYPOINT ["node", "bin/servman.js"]
CMD ["start"]
