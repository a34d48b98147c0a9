"""`tinychat-engine` (also `python -m engine`): the engine from the command line.

  render --format NAME            stdin {"messages": [...]} → the exact prompt text, nothing else
  chat --model PATH [options]     stdin {"messages": [...]} → the streamed answer (--json: a summary)
  validate PATH                   check a GGUF file; JSON summary or one line saying why not
  bench --model PATH [--reference PATH] [--json]
                                  speed and memory of a level, and its answer quality against a reference

Bad input exits non-zero with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from pathlib import Path

from engine.types import EngineError, GenerationParams, LoadOptions, Message, ModelInfo

ROLES = ("system", "user", "assistant")
EXIT_USAGE, EXIT_FAILED = 2, 1


class InputError(Exception):
    """The caller's input is unusable; the message says how."""


def read_messages(text: str) -> list[Message]:
    """Parse {"messages": [{"role": ..., "content": ...}, ...]} into Messages."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"input is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from e
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise InputError('input must be a JSON object with a "messages" list')
    out = []
    for i, m in enumerate(data["messages"]):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise InputError(f'message {i} must have a "role" ({", ".join(ROLES)}) and a string "content"')
        out.append(Message(m["role"], m["content"]))
    return out


def _render(args: argparse.Namespace) -> int:
    from engine.chat_format import get_format

    fmt = get_format(args.format)
    sys.stdout.write(fmt.prompt_text(read_messages(sys.stdin.read())))
    return 0


def _chat(args: argparse.Namespace) -> int:
    from engine.select import create_engine, engine_for_model

    messages = read_messages(sys.stdin.read())
    if not any(m.role == "user" for m in messages):
        raise InputError("the messages must include at least one user message")
    backend, path = engine_for_model(Path(args.model), args.engine)
    engine = create_engine(backend)
    model = ModelInfo(path=path, engine=engine.name, chat_format=args.format or "chatml")
    engine.load(model, LoadOptions(n_threads=args.threads, chat_format=args.format))
    params = GenerationParams(max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed)
    text, last = [], None
    for chunk in engine.generate(messages, params, threading.Event()):
        text.append(chunk.text)
        if not args.json:
            sys.stdout.write(chunk.text)
            sys.stdout.flush()
        last = chunk
    engine.unload()
    assert last is not None and last.stats is not None
    if last.finish_reason == "error":
        raise EngineError(last.error or "generation failed")
    if args.json:
        s = last.stats
        json.dump({"text": "".join(text), "finish_reason": last.finish_reason, "prompt_tokens": s.prompt_tokens,
                   "reused_tokens": s.reused_tokens, "completion_tokens": s.completion_tokens,
                   "ttft_s": round(s.ttft_s, 4), "tokens_per_s": round(s.tokens_per_s, 2),
                   "forgotten": list(s.forgotten)}, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def _bench_model(path: Path, engine: str) -> ModelInfo:
    """A ModelInfo for `path` labelled with its level (GGUF file type, or MLX bits) when it has one."""
    from engine.gguf_inspect import GgufProblem, file_type_name, read_header

    name = "mlx" if engine == "mlx" or (engine == "auto" and path.is_dir()) else "llama.cpp"
    level = ""
    try:
        if name == "llama.cpp":
            level = file_type_name(read_header(path).metadata.get("general.file_type")) or ""
        else:
            quant = json.loads((path / "config.json").read_text(encoding="utf-8")).get("quantization") or {}
            level = f"{quant.get('bits', 16)}bit"
    except (OSError, ValueError, GgufProblem):
        pass  # the load that follows says what is wrong with the file
    label = f"{path.name} · {level}" if level else path.name
    return ModelInfo(path=path, engine=name, quant=level, label=label)  # type: ignore[arg-type]


def _bench(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from engine.level_bench import file_identity, measure_level, prepare_reference, read_eval_text
    from engine.level_report import describe

    model = _bench_model(Path(args.model), args.engine)
    text = read_eval_text(Path(args.text) if args.text else None)

    def progress(stage: str, fraction: float) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\r{stage:<10} {100 * fraction:3.0f} %", end="", file=sys.stderr, flush=True)

    reference = None
    if args.reference:
        ref = _bench_model(Path(args.reference), model.engine)
        reference = prepare_reference(ref, text, identity=file_identity(ref.path), n_threads=args.threads,
                                      step=lambda f: progress("reference", f))
    figures = measure_level(model, identity=file_identity(model.path), text=text, reference=reference,
                            n_threads=args.threads, progress=progress)
    if not args.json and sys.stderr.isatty():
        print("\r" + " " * 20 + "\r", end="", file=sys.stderr)
    if args.json:
        json.dump(asdict(figures), sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        print(describe(figures))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(prog="tinychat-engine", description="TinyChat's inference engine.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="print the prompt text a chat format produces")
    r.add_argument("--format", required=True)
    c = sub.add_parser("chat", help="answer the conversation on stdin")
    c.add_argument("--model", required=True,
                   help="GGUF file (llama.cpp), a folder holding one, or an MLX model folder")
    c.add_argument("--engine", default="auto", choices=("auto", "llama.cpp", "mlx"),
                   help="backend (default: auto, the one that runs the model given)")
    c.add_argument("--format", help="chat format (default: the model's own, chatml)")
    c.add_argument("--max-tokens", type=int, default=256)
    c.add_argument("--temperature", type=float, default=0.7)
    c.add_argument("--seed", type=int)
    c.add_argument("--threads", type=int)
    c.add_argument("--json", action="store_true", help="print one JSON summary instead of the text")
    v = sub.add_parser("validate", help="check a GGUF model file")
    v.add_argument("path")
    b = sub.add_parser("bench", help="measure a level's speed, memory and answer quality")
    b.add_argument("--model", required=True, help="GGUF file (llama.cpp) or MLX model folder to measure")
    b.add_argument("--reference", help="the level to compare answers with (the same model, more bits)")
    b.add_argument("--engine", default="auto", choices=("auto", "llama.cpp", "mlx"),
                   help="default: mlx for a folder, llama.cpp for a file")
    b.add_argument("--threads", type=int, help="default: one per physical core")
    b.add_argument("--text", help="evaluation text (default: the one TinyChat ships)")
    b.add_argument("--json", action="store_true", help="print every figure as one JSON document")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    from engine import cpu_build

    cpu_build.apply()  # before llama_cpp is imported: it opens the library of the build chosen here
    from engine.validate import run_child_if_requested

    run_child_if_requested(argv)  # frozen builds validate models by re-running themselves as a child
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("llama.cpp").setLevel(logging.CRITICAL)  # its warnings are ours to phrase
    args = build_parser().parse_args(argv)
    try:
        if args.command == "render":
            return _render(args)
        if args.command == "chat":
            return _chat(args)
        if args.command == "bench":
            return _bench(args)
        from engine.validate import cli_main

        return cli_main([args.path])
    except InputError as e:
        print(f"tinychat-engine: {e}", file=sys.stderr)
        return EXIT_USAGE
    except EngineError as e:
        print(f"tinychat-engine: {e.message}", file=sys.stderr)
        logging.getLogger(__name__).debug("%s", e.detail)
        return EXIT_USAGE if type(e).__name__ == "UnknownFormatError" else EXIT_FAILED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
