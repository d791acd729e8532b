# gb10-router and its node agent, one image. Build: docker build -t gb10-router .
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir "uv==0.13.9"
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
# Dependencies first: they change less often than the code.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY app app
COPY cli cli
COPY cluster cluster
COPY config config
COPY devnodes devnodes
COPY graph graph
COPY nodes nodes
COPY policies policies
COPY routing routing
COPY service service
COPY server.py langgraph.json ./
RUN uv sync --frozen --no-dev

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 router
WORKDIR /app
COPY --from=build --chown=router:router /app /app
USER router
ENV PATH=/app/.venv/bin:$PATH \
    ROUTER_STATE_DIR=/home/router/state \
    PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["gb10-router", "serve", "--host", "0.0.0.0", "--port", "8000"]
