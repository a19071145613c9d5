"""An application with no instrumentation code at all. Run it instrumented with either:

opentelemetry-instrument python examples/plain_app.py
respan-instrument run examples/plain_app.py
"""

import openai

client = openai.OpenAI()
answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
print(answer.choices[0].message.content)
