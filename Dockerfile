FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json tsconfig.json ./
COPY server ./server
COPY request ./request
COPY lockers ./lockers
COPY storage ./storage
COPY dedupe ./dedupe
COPY errors ./errors
COPY auth ./auth
COPY download ./download
COPY hooks ./hooks
COPY concat ./concat
COPY checksum ./checksum
COPY metrics ./metrics
COPY web ./web
COPY scripts/build.ts ./scripts/build.ts
# npm ci builds dist/ (the prepare script): the server runs as plain JavaScript.
RUN npm ci --omit=dev
USER node
EXPOSE 8080
CMD ["node", "--max-semi-space-size=2", "dist/server/main.js"]
