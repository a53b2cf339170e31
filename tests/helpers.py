"""Small builders shared by the tests: a sound task and its Generator completion."""

from toolr0_lite.prompts import generator_completion
from toolr0_lite.records import Call, Spec, Task, Tool


def weather_tool(required=("city",)) -> Tool:
    return Tool(
        "get_forecast",
        "Get the weather forecast for a city.",
        {"city": {"type": "string", "description": "city name"}, "days": {"type": "integer", "description": "days"}},
        list(required),
    )


def hotel_tool() -> Tool:
    return Tool("book_hotel", "Book a hotel room in a city.", {"city": {"type": "string", "description": "city"}}, ["city"])


def sound_task(**changes) -> Task:
    """A task that passes verification: one call, one distractor tool."""
    task = Task(
        question="What will the weather be in Oslo over the next 3 days?",
        tools=[weather_tool(), hotel_tool()],
        gold_calls=[Call("get_forecast", {"city": "Oslo", "days": 3})],
        spec=Spec("weather", "single_turn", 1, 2),
    )
    for key, value in changes.items():
        setattr(task, key, value)
    return task


def completion_of(task: Task) -> str:
    return generator_completion(task, "plan")
