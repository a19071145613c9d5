"""A streaming chat loop: each turn streams, and each turn is one request log with its ttft.

python examples/chatbot.py "first message" "second message"   # or interactive with no args
"""

from __future__ import annotations

import sys

import openai

import respan_instrument

respan_instrument.instrument()
client = openai.OpenAI()


def turns() -> list[str] | None:
    return sys.argv[1:] or None


def main() -> None:
    history = [{"role": "system", "content": "You are a helpful assistant."}]
    scripted = turns()
    with respan_instrument.attributes(customer_identifier="chat-user", thread_identifier="conversation-1"):
        while True:
            if scripted is not None:
                if not scripted:
                    break
                text = scripted.pop(0)
            else:
                try:
                    text = input("you> ")
                except EOFError:
                    break
            history.append({"role": "user", "content": text})
            reply = ""
            print("bot> ", end="", flush=True)
            for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=history, stream=True):
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta:
                    reply += delta
                    print(delta, end="", flush=True)
            print()
            history.append({"role": "assistant", "content": reply})
    respan_instrument.flush(10)


if __name__ == "__main__":
    main()
