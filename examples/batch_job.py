"""An asyncio batch job: many concurrent calls, each task tagged with its own item id.

python examples/batch_job.py
"""

from __future__ import annotations

import asyncio

import openai

import respan_instrument

respan_instrument.instrument()


async def summarise(client: openai.AsyncOpenAI, limit: asyncio.Semaphore, item: int) -> str:
    async with limit:
        with respan_instrument.attributes(custom_identifier=f"item-{item}"):
            response = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"Summarise document {item}"}]
            )
    return response.choices[0].message.content or ""


@respan_instrument.attributes(customer_identifier="nightly-batch", metadata={"job": "summaries"})
async def main() -> None:
    limit = asyncio.Semaphore(5)
    async with openai.AsyncOpenAI() as client:
        results = await asyncio.gather(*(summarise(client, limit, i) for i in range(20)))
    print(f"{len(results)} summaries")


if __name__ == "__main__":
    asyncio.run(main())
    respan_instrument.flush(10)
