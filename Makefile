# Shortcuts for developers; the README's two commands are ./demo and ./test (no make needed on a fresh machine).
.PHONY: demo test bench setup clean

setup:
	bash hack/setup.sh

demo:
	./demo

test:
	./test

bench: setup
	.venv/bin/python -m bench

clean:
	rm -rf .venv .demo .pytest_cache
