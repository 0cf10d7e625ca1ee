# certkeeper agent: the sidecar that keeps certificates issued, renewed and deployed to the
# services beside it (see docs/agent.md and examples/docker-compose/).
#
#   docker build -t certkeeper .
#   docker run --rm -v $PWD/certkeeper.yaml:/etc/certkeeper/certkeeper.yaml:ro certkeeper
FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsup.config.ts ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts \
 # The Redis and PostgreSQL store drivers are optional peers of the library; the agent image
 # carries them so that `store: redis://…` and `store: postgres://…` work.
 && npm install --omit=dev --ignore-scripts --no-save --no-package-lock ioredis@6 pg@8

FROM node:20-slim
# uid/gid 101 by default: the user nginxinc/nginx-unprivileged runs as, so the agent may signal
# an nginx it shares a pid namespace with (a process can only signal its own user's processes).
ARG UID=101
ARG GID=101
RUN groupadd --gid "${GID}" certkeeper \
 && useradd --uid "${UID}" --gid "${GID}" --no-create-home --shell /usr/sbin/nologin certkeeper \
 && mkdir -p /var/lib/certkeeper /etc/certkeeper \
 && chown certkeeper:certkeeper /var/lib/certkeeper
ENV NODE_ENV=production \
    CERTKEEPER_LOG_FORMAT=json \
    CERTKEEPER_HEALTH_PORT=8080
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER certkeeper
VOLUME ["/var/lib/certkeeper"]
EXPOSE 8080
# /healthz: the agent process answers (its certificates' readiness is /readyz).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.CERTKEEPER_HEALTH_PORT+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/cli/index.js"]
CMD ["agent", "--config", "/etc/certkeeper/certkeeper.yaml", "--health-port", "8080"]
