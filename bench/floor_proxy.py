"""Minimal proxies that measure the floor under the router's own overhead.

    python bench/floor_proxy.py FLAVOUR PORT NODE_URL

Each serves `POST /chat` with uvicorn (one worker, httptools, as `gb10-router serve` does) and
answers with the model's text, doing nothing else:
- `httpx`: forwards the body with one shared httpx client;
- `chatopenai`: calls one ChatOpenAI bound to the node (`max_retries=0`);
- `langgraph`: runs a four-node LangGraph graph shaped like the router's single path
  (classify -> schedule -> call_model via Send -> merge) whose nodes do nothing but the
  ChatOpenAI call.
`bench/floors.py` starts them and times them against the node and LiteLLM's proxy.
"""

from __future__ import annotations

import operator
import sys
from typing import Annotated, Any

import httpx
import uvicorn
from fastapi import FastAPI
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import BaseModel
from typing_extensions import TypedDict


class Ask(BaseModel):
    prompt: str


class State(TypedDict, total=False):
    prompt: str
    model: str
    answers: Annotated[list[str], operator.add]
    result: str


def graph_over(llm: ChatOpenAI) -> Any:
    async def classify(state: State) -> State:
        return {"model": "llama31"}

    async def schedule(state: State) -> State:
        return {}

    def dispatch(state: State) -> list[Send]:
        return [Send("call_model", {"prompt": state["prompt"]})]

    async def call_model(task: State) -> State:
        reply = await llm.ainvoke([HumanMessage(task["prompt"])])
        return {"answers": [str(reply.content)]}

    async def merge(state: State) -> State:
        return {"result": state["answers"][0]}

    g = StateGraph(State)
    g.add_node("classify", classify)
    g.add_node("schedule", schedule)
    g.add_node("call_model", call_model)
    g.add_node("merge", merge)
    g.add_edge(START, "classify")
    g.add_edge("classify", "schedule")
    g.add_conditional_edges("schedule", dispatch, ["call_model"])
    g.add_edge("call_model", "merge")
    g.add_edge("merge", END)
    return g.compile()


def app_for(flavour: str, node_url: str) -> FastAPI:
    app = FastAPI()
    base = f"{node_url}/llama31/v1"
    llm = ChatOpenAI(model="llama31", base_url=base, api_key="unused", max_retries=0)  # type: ignore[arg-type]
    client = httpx.AsyncClient(timeout=30)
    graph = graph_over(llm)

    @app.post("/chat")
    async def chat(ask: Ask) -> dict[str, str]:
        if flavour == "httpx":
            body = {"model": "llama31", "messages": [{"role": "user", "content": ask.prompt}]}
            r = await client.post(f"{base}/chat/completions", json=body)
            return {"result": r.json()["choices"][0]["message"]["content"]}
        if flavour == "chatopenai":
            return {"result": str((await llm.ainvoke([HumanMessage(ask.prompt)])).content)}
        out = await graph.ainvoke({"prompt": ask.prompt})
        return {"result": out["result"]}

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    return app


if __name__ == "__main__":
    flavour, port, node = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if flavour not in ("httpx", "chatopenai", "langgraph"):
        raise SystemExit(f"unknown flavour {flavour!r}: httpx, chatopenai or langgraph")
    uvicorn.run(app_for(flavour, node), port=port, log_level="warning", http="httptools")
