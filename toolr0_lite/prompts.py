"""Every prompt of the method, as chat message lists (the model layer applies the chat template).

- Generator: rules in the system turn, the sampled spec in the user turn (docs/METHOD.md §3). Optionally one
  complete example task from another domain as a prior turn: SmolLM2-135M wrote the tags in 0 of 8
  samples without one, and mostly followed them with one.
- Solver: think, then a JSON list of calls (docs/METHOD.md §4); an empty list when no tool fits. Optionally its
  answer is begun for it with `<think>` (a last assistant turn the model continues): without a worked example
  Qwen2.5-Coder-0.5B opened `<think>` in 0 of 48 answers; begun for it, it closed the block in 11 of 12.
- Judges: the frozen Solver scores a task's quality (1-5) and labels its difficulty (easy/medium/hard).
Each text is defined once here; rewards and the pipeline import what they need (e.g. echo detection).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict

from toolr0_lite.records import Call, Spec, Task, Tool

Messages = list[dict[str, str]]

GENERATOR_SYSTEM = """You write tool-calling tasks that train an AI assistant. Follow the spec you are given.
Rules:
- Write exactly as many tools as the spec's menu size and exactly as many gold calls as it asks for.
- Stay in the spec's domain. Give every tool a specific snake_case name and a clear description.
- Arguments are flat: each parameter has a type of string, integer, number, boolean or date.
- Every argument value in a gold call must appear word for word in the question.
- For a multi-turn context, the question holds a short transcript: "# Conversation" then "User: ..." and "Agent: ..." lines.
- If the spec asks for 0 gold calls, the request must need something none of the tools can do, and the gold answer is [].
Answer in exactly this format and nothing else:
<think> a short plan </think>
<question> the user's request </question>
<available_tools> [{"name": ..., "description": ..., "parameters": {"arg": {"type": ..., "description": ...}}, "required": ["arg"]}] </available_tools>
<tool_call_answer> [{"name": ..., "arguments": {"arg": value}}] </tool_call_answer>"""

SOLVER_SYSTEM = """You answer a user's request by calling tools from the list you are given.
First think inside <think> </think>. Then give every call as a JSON list inside <tool_call_answer> </tool_call_answer>, like:
<tool_call_answer>[{"name": "tool_name", "arguments": {"argument": "value"}}]</tool_call_answer>
Use only tools from the list and argument values from the request. If no tool can serve the request, answer <tool_call_answer>[]</tool_call_answer>."""

SEMANTIC_JUDGE_SYSTEM = """You review tool-calling tasks. Rate the task from 1 (bad) to 5 (excellent): is the request clear and realistic, and do the gold calls solve it exactly?
Answer with the rating only, as <score>N</score>."""

DIFFICULTY_JUDGE_SYSTEM = """You review tool-calling tasks. How hard is it for an assistant to produce exactly the gold calls?
Answer with one word, as <difficulty>easy</difficulty>, <difficulty>medium</difficulty> or <difficulty>hard</difficulty>."""

DIFFICULTIES = ("easy", "medium", "hard")


def spec_request(spec: Spec) -> str:
    """The Generator's user turn: the spec in words."""
    context = "multi-turn conversation" if spec.context_type == "multi_turn" else "single-turn request"
    calls = (
        "0 (no tool on the menu can serve the request; the gold answer is [])" if spec.no_call else str(spec.num_calls)
    )
    return (
        f"Write one task.\nDomain: {spec.domain}\nContext: {context}\n"
        f"Tools on the menu: {spec.tool_menu_size}\nGold calls: {calls}"
    )


def _tools_json(tools: list[Tool]) -> str:
    return json.dumps([asdict(t) for t in tools], ensure_ascii=False)


def _calls_json(calls: list[Call]) -> str:
    return json.dumps([asdict(c) for c in calls], ensure_ascii=False)


def generator_completion(task: Task, think: str = "") -> str:
    """A task written in the Generator's output format (used for exemplars and in tests)."""
    return (
        f"<think> {think} </think>\n<question> {task.question} </question>\n"
        f"<available_tools> {_tools_json(task.tools)} </available_tools>\n"
        f"<tool_call_answer> {_calls_json(task.gold_calls)} </tool_call_answer>"
    )


def tool(name: str, description: str, required: list[str] | None = None, **params: str) -> Tool:
    """A compact tool: each keyword is an argument name mapped to its type; `required` names the required
    ones (all of them when None). Used for the exemplars here and for hand-written benchmark tasks."""
    parameters = {p: {"type": t, "description": p.replace("_", " ")} for p, t in params.items()}
    return Tool(name, description, parameters, list(params) if required is None else required)


# A small built-in set of complete tasks, rotated across prompts, never from the sampled domain.
EXEMPLARS: list[tuple[Task, str]] = [
    (
        Task(
            question="Convert 250 US dollars to euros for my trip budget.",
            tools=[
                tool("convert_currency", "Convert an amount between two currencies.",
                      amount="number", from_currency="string", to_currency="string"),
                tool("get_stock_price", "Get the latest price of a stock ticker.", ticker="string"),
            ],
            gold_calls=[Call("convert_currency", {"amount": 250, "from_currency": "US dollars", "to_currency": "euros"})],
            spec=Spec("finance", "single_turn", 1, 2),
        ),
        "One conversion call; the stock tool is a distractor.",
    ),
    (
        Task(
            question="Book a table for 4 at Luigi's at 7 pm and text Anna that dinner is booked.",
            tools=[
                tool("book_table", "Reserve a table at a restaurant.", restaurant="string", party_size="integer",
                      time="string"),
                tool("send_text", "Send a text message to a contact.", contact="string", message="string"),
                tool("get_menu", "Show a restaurant's menu.", restaurant="string"),
            ],
            gold_calls=[
                Call("book_table", {"restaurant": "Luigi's", "party_size": 4, "time": "7 pm"}),
                Call("send_text", {"contact": "Anna", "message": "dinner is booked"}),
            ],
            spec=Spec("food_ordering", "single_turn", 2, 3),
        ),
        "Two calls: book first, then the text.",
    ),
    (
        Task(
            question="# Conversation\nUser: Is it cold in Oslo?\nAgent: Which day do you mean?\nUser: Tomorrow, in celsius.",
            tools=[
                tool("get_forecast", "Get the weather forecast for a city and day.", city="string", day="string",
                      unit="string"),
                tool("get_air_quality", "Get the air quality index of a city.", city="string"),
            ],
            gold_calls=[Call("get_forecast", {"city": "Oslo", "day": "Tomorrow", "unit": "celsius"})],
            spec=Spec("weather", "multi_turn", 1, 2),
        ),
        "The user gave the day in the second turn.",
    ),
    (
        Task(
            question="Please translate my wedding speech into French and read it aloud at the party.",
            tools=[
                tool("search_flights", "Search flights between two airports on a date.", origin="string",
                      destination="string", date="date"),
                tool("get_hotel_reviews", "Get guest reviews of a hotel.", hotel="string"),
            ],
            gold_calls=[],
            spec=Spec("travel", "single_turn", 0, 2),
        ),
        "No tool on the menu translates or speaks, so no call fits.",
    ),
    (
        Task(
            question="Can you repair the leaking pipe under my kitchen sink tonight?",
            tools=[
                tool("set_thermostat", "Set the target temperature of a thermostat.", room="string",
                      temperature="number"),
                tool("turn_on_lights", "Turn on the lights in a room.", room="string"),
            ],
            gold_calls=[],
            spec=Spec("iot", "single_turn", 0, 2),
        ),
        "A smart-home menu cannot fix plumbing: the answer is no call.",
    ),
]  # fmt: skip


def pick_exemplar(spec: Spec, index: int) -> tuple[Task, str]:
    """The `index`-th exemplar (rotating) of the same kind (call / no call) from another domain."""
    same_kind = [e for e in EXEMPLARS if e[0].spec.no_call == spec.no_call]
    pool = [e for e in same_kind if e[0].spec.domain != spec.domain] or same_kind
    return pool[index % len(pool)]


def generator_messages(spec: Spec, exemplar_index: int | None = None) -> Messages:
    """The Generator prompt for one spec; with `exemplar_index`, one worked example as a prior turn."""
    messages = [{"role": "system", "content": GENERATOR_SYSTEM}]
    if exemplar_index is not None:
        task, think = pick_exemplar(spec, exemplar_index)
        messages += [
            {"role": "user", "content": spec_request(task.spec)},
            {"role": "assistant", "content": generator_completion(task, think)},
        ]
    return messages + [{"role": "user", "content": spec_request(spec)}]


def solver_user_turn(question: str, tools: list[Tool]) -> str:
    return f"User request:\n{question}\n\nAvailable tools (JSON):\n{_tools_json(tools)}"


def solver_completion(task: Task, think: str = "") -> str:
    """A task's gold answer written in the Solver's output format (for exemplars and tests)."""
    return f"<think> {think} </think>\n<tool_call_answer>{_calls_json(task.gold_calls)}</tool_call_answer>"


EXAMPLE_LAST = ("alternate", "call", "no_call")  # which kind of a pair of examples comes last


def solver_examples(task: Task, exemplar_index: int, pair: bool = False, last: str = "alternate") -> list[tuple[Task, str]]:
    """The solved examples (task, reasoning) shown before `task`, exemplars of other domains and questions in
    turn: one, of either kind; with `pair`, one call and one no-call example, each kind last every other index
    (`last` "alternate"), or always the call (`last` "call") or the no-call one ("no_call") last.

    >>> [bool(t.gold_calls) for t, _ in solver_examples(EXEMPLARS[0][0], 1, pair=True)]
    [False, True]
    >>> [bool(t.gold_calls) for t, _ in solver_examples(EXEMPLARS[0][0], 1, pair=True, last="no_call")]
    [True, False]
    """
    domain = task.spec.domain if task.spec else None
    pool = [(t, th) for t, th in EXEMPLARS if t.question != task.question and t.spec.domain != domain]
    if not pair:
        return [pool[exemplar_index % len(pool)]]
    calls = [e for e in pool if e[0].gold_calls] or [e for e in EXEMPLARS if e[0].gold_calls]
    no_calls = [e for e in pool if not e[0].gold_calls] or [e for e in EXEMPLARS if not e[0].gold_calls]
    # each kind rotates through its exemplars in both places; indexed by `exemplar_index` itself, the no-call
    # example shown last (even indices) would always be the same one of two
    turn = exemplar_index // 2
    two = [calls[turn % len(calls)], no_calls[turn % len(no_calls)]]
    return two[::-1] if last == "call" or (last == "alternate" and exemplar_index % 2) else two


THINK_PREFILL = "<think>"


def solver_messages(
    task: Task, exemplar_index: int | None = None, think_prefill: bool = False, example_pair: bool = False,
    example_last: str = "alternate",
) -> Messages:
    """The Solver prompt: the request and the tool menu; with `exemplar_index`, one solved example first (two
    with `example_pair`, in the order `example_last` says: `solver_examples`); with `think_prefill`, the answer
    begun as `<think>`, an assistant turn for the model to continue.

    SmolLM2-135M wrote the answer tags in 0 of 8 samples without the example and in 5 of 8 with it.
    """
    messages = [{"role": "system", "content": SOLVER_SYSTEM}]
    for example, think in solver_examples(task, exemplar_index, example_pair, example_last) if exemplar_index is not None else []:
        messages += [
            {"role": "user", "content": solver_user_turn(example.question, example.tools)},
            {"role": "assistant", "content": solver_completion(example, think)},
        ]
    messages.append({"role": "user", "content": solver_user_turn(task.question, task.tools)})
    if think_prefill:
        messages.append({"role": "assistant", "content": THINK_PREFILL})
    return messages


def _task_for_judge(task: Task) -> str:
    return f"{solver_user_turn(task.question, task.tools)}\n\nGold calls (JSON):\n{_calls_json(task.gold_calls)}"


def semantic_judge_messages(task: Task) -> Messages:
    return [{"role": "system", "content": SEMANTIC_JUDGE_SYSTEM}, {"role": "user", "content": _task_for_judge(task)}]


def difficulty_judge_messages(task: Task) -> Messages:
    return [{"role": "system", "content": DIFFICULTY_JUDGE_SYSTEM}, {"role": "user", "content": _task_for_judge(task)}]


def parse_judge_score(text: str, default: int = 3) -> int:
    """The judge's 1-5 rating: from `<score>N</score>`, else the first lone digit 1-5, else `default`.

    >>> parse_judge_score("<score>4</score>"), parse_judge_score("I'd say 2."), parse_judge_score("great")
    (4, 2, 3)
    """
    match = re.search(r"<score>\s*([1-5])\s*</score>", text) or re.search(r"(?<![\d.])([1-5])(?!\d|\.\d)", text)
    return int(match.group(1)) if match else default


def parse_difficulty(text: str, default: str = "medium") -> str:
    """The judge's label: from `<difficulty>…</difficulty>`, else the first label word, else `default`.

    >>> parse_difficulty("<difficulty>hard</difficulty>"), parse_difficulty("Easy one."), parse_difficulty("?")
    ('hard', 'easy', 'medium')
    """
    match = re.search(r"<difficulty>\s*(easy|medium|hard)\s*</difficulty>", text, re.IGNORECASE) or re.search(
        r"\b(easy|medium|hard)\b", text, re.IGNORECASE
    )
    return match.group(1).lower() if match else default


# Text a question holds when the Generator copied its prompt or a template instead of writing a request.
_ECHO_MARKERS = (
    "<question>", "</question>", "<available_tools>", "<tool_call_answer>", "<think>", "Domain:",
    "Tools on the menu:", "Gold calls:", "the user's request", "Write one task", "{question}", "[question]",
    "your question here", "...", "…",
)  # fmt: skip
_EXEMPLAR_QUESTIONS = {task.question.casefold() for task, _ in EXEMPLARS}


def is_prompt_echo(question: str) -> bool:
    """True when a question repeats the prompt, a placeholder, or a built-in exemplar's question.

    >>> is_prompt_echo("the user's request"), is_prompt_echo("Find flights from Rome to Paris on May 3.")
    (True, False)
    """
    if question.strip().casefold() in _EXEMPLAR_QUESTIONS:
        return True
    return any(marker.casefold() in question.casefold() for marker in _ECHO_MARKERS)
