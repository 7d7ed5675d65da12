# Multi-stage: build a wheel, install it into a slim image that runs as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY providers ./providers
COPY storage ./storage
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 chatops
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
RUN mkdir -p /app/data && chown chatops:chatops /app/data
USER chatops
ENV PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite+aiosqlite:////app/data/chatops.db
VOLUME ["/app/data"]
# chatops-bridge run (the default); `docker run … chatops-bridge rotate-keys` rotates keys.
CMD ["chatops-bridge"]
