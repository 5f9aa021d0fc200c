"""Renders the real chat templates in Tests/TokenizersTests/Fixtures/chat-templates with
transformers' own Jinja renderer (the one apply_chat_template uses) and writes the expected
texts to chat_template_reference.json beside them. ThoughtCrime's Jinja interpreter must
reproduce every text, and every refusal (raise_exception) as an error.

    .venv-bench/bin/python scripts/reference/make_chat_template_fixtures.py

The templates come from the models' tokenizer configs (copies in llama.cpp's models/templates;
SmolLM2's from the shipped GGUF). Llama-3.2's date is pinned with date_string, as
ThoughtCrime defines no strftime_now (a rendering must not change from one day to the next).
"""
import json
import os
import sys

from transformers.utils.chat_template_utils import render_jinja_template

HERE = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "TokenizersTests", "Fixtures", "chat-templates")

SPECIALS = {
    "smollm2-135m-instruct.jinja": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
    "qwen3-0.6b.jinja": {"bos_token": None, "eos_token": "<|im_end|>"},
    "llama-3.2-3b-instruct.jinja": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "date_string": "26 Jul 2024"},
    "gemma-2-2b-it.jinja": {"bos_token": "<bos>", "eos_token": "<eos>"},
    "mistral-nemo-instruct-2407.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "phi-3.5-mini-instruct.jinja": {"bos_token": "<s>", "eos_token": "<|endoftext|>"},
}

def user(text): return {"role": "user", "content": text}
def assistant(text, reasoning=None):
    m = {"role": "assistant", "content": text}
    if reasoning is not None: m["reasoning_content"] = reasoning
    return m
def system(text): return {"role": "system", "content": text}

CONVERSATIONS = [
    ([user("What is 2 + 2?")], True, {}),
    ([user("What is 2 + 2?")], False, {}),
    ([system("Be brief."), user("Name a colour.")], True, {}),
    ([user("Hi"), assistant("Hello! How can I help?")], False, {}),
    ([system("Be brief."), user("Hi"), assistant("Hello."), user("Bye"), assistant("Goodbye.")], False, {}),
    ([user("Hi"), assistant("Hello."), user("And again?")], True, {}),
    ([user("  spaced question \n"), assistant(" spaced answer \n")], False, {}),
    ([user("Say <|im_end|> or <|eot_id|> or <end_of_turn> or </s>, literally."), assistant("I said it.")], False, {}),
    ([user("Unicode: café, 東京, emoji 🙂")], True, {}),
    ([user("Quotes \"double\" and 'single' and back\\slash")], True, {}),
    ([], True, {}),
    ([user("Is it safe?")], True, {"enable_thinking": False}),
    ([user("Is it safe?")], True, {"enable_thinking": True}),
    ([user("Is it safe?"), assistant("Yes.", reasoning="Check the facts.")], False, {}),
    ([user("Is it safe?"), assistant("Yes.", reasoning="")], False, {}),
    ([user("Q1"), assistant("A1", reasoning="R1"), user("Q2"), assistant("A2", reasoning="R2")], False, {}),
    ([user("Q"), assistant("<think>\nold reasoning\n</think>\n\nA")], False, {}),
    ([user("Q1"), user("Q2")], True, {}),
    ([assistant("I start."), user("Q")], True, {}),
]

cases = []
for name in sorted(SPECIALS):
    source = open(os.path.join(HERE, name)).read()
    for messages, generation, extra in CONVERSATIONS:
        kwargs = dict(SPECIALS[name])
        kwargs.update(extra)
        case = {"template": name, "messages": messages, "add_generation_prompt": generation,
                "variables": {k: v for k, v in kwargs.items()}}
        try:
            rendered = render_jinja_template(conversations=[messages], chat_template=source,
                                             add_generation_prompt=generation, **kwargs)
            text = rendered[0] if isinstance(rendered, tuple) else rendered
            if isinstance(text, list): text = text[0]
            case["text"] = text
        except Exception as error:  # raise_exception in the template, or a Jinja error
            case["error"] = str(error)
        cases.append(case)

with open(os.path.join(HERE, "chat_template_reference.json"), "w") as f:
    json.dump(cases, f, ensure_ascii=False, indent=1)
    f.write("\n")
print(len(cases), "cases,", sum("error" in c for c in cases), "refusals", file=sys.stderr)
