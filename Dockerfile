FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY tsconfig.json ./
COPY server ./server
COPY storage ./storage
COPY dedupe ./dedupe
COPY errors ./errors
COPY auth ./auth
COPY download ./download
COPY hooks ./hooks
COPY web ./web
USER node
EXPOSE 8080
CMD ["node", "--import", "tsx", "server/main.ts"]
