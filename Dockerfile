# Multi-stage: build a wheel, install it into a slim image that runs as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY providers ./providers
COPY storage ./storage
COPY i18n ./i18n
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 chatops
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
RUN mkdir -p /app/data && chown chatops:chatops /app/data
USER chatops
# METRICS_PORT: /metrics and /healthz in polling mode too, so the HEALTHCHECK has a port.
ENV PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite+aiosqlite:////app/data/chatops.db \
    METRICS_PORT=9090
VOLUME ["/app/data"]
# 8443: the webhook server (WEBHOOK_PORT's default); 9090: METRICS_PORT.
EXPOSE 8443 9090
# /healthz on METRICS_PORT (else the webhook port): 200 when the database and Telegram answer.
# python -m bot.probe is standard library only (no curl in the image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "bot.probe"]
# chatops-bridge run (the default); `docker run … chatops-bridge rotate-keys` rotates keys.
CMD ["chatops-bridge"]
