"""The command line as a user runs it (in-process, through ``apigen_mt.cli.main``)."""

from __future__ import annotations

import json

import pytest

from apigen_mt.cli import main

pytestmark = pytest.mark.integration


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_domains_lists_counts(capsys):
    assert main(["domains", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert (rows["retail"]["read"], rows["retail"]["write"]) == (6, 7)
    assert (rows["airline"]["read"], rows["airline"]["write"]) == (6, 6)
    assert all("error" not in row for row in rows.values()), rows


def test_import_then_validate(tmp_path, capsys):
    blueprints = tmp_path / "airline_test.jsonl"
    assert main(["import-tau2", "--domain", "airline", "--split", "test", "--out", str(blueprints)]) == 0
    lines = _rows(blueprints)
    assert len(lines) == 20 and all(row["source"]["split"] == "test" for row in lines)
    assert {"id", "domain", "instruction", "actions", "outputs"} <= set(lines[0])

    results = tmp_path / "out" / "results.jsonl"
    assert main(["validate", str(blueprints), "--domain", "airline", "--out", str(results)]) == 0
    rows = _rows(results)
    assert [row["id"] for row in rows] == [row["id"] for row in lines]
    assert all(set(row) >= {"id", "passed", "stage", "reasons", "diff"} for row in rows)
    assert "validated 20 blueprints against airline" in capsys.readouterr().err


def test_malformed_lines_are_format_failures_not_crashes(tmp_path, capsys):
    source = tmp_path / "mixed.jsonl"
    good = {"id": "g", "domain": "retail", "instruction": "Tell me the product types.",
            "actions": [{"name": "list_all_product_types", "arguments": {}}], "outputs": []}
    source.write_text("\n".join([
        json.dumps(good),
        "{not json",
        json.dumps({"id": "x", "domain": "retail"}),
        json.dumps([1, 2]),
        "",
        json.dumps({**good, "id": "u", "actions": [{"name": "nope", "arguments": {}}]}),
    ]) + "\n")
    assert main(["validate", str(source), "--domain", "retail"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(row["line"], row["stage"]) for row in rows] == [
        (1, "ok"), (2, "format"), (3, "format"), (4, "format"), (6, "execution")]
    assert rows[1]["reasons"][0].startswith("line 2: invalid JSON")
    assert "line 3: missing field 'instruction'" in rows[2]["reasons"]
    assert main(["validate", str(source), "--domain", "retail", "--fail-on-reject"]) == 1


def test_clear_errors_for_bad_domain_and_missing_file(tmp_path, capsys):
    source = tmp_path / "b.jsonl"
    source.write_text("{}\n")
    assert main(["validate", str(source), "--domain", "nowhere"]) == 2
    assert "unknown domain 'nowhere'" in capsys.readouterr().err
    assert main(["validate", str(source), "--domain", "no_such_pkg.domain"]) == 2
    assert "cannot import domain module 'no_such_pkg.domain'" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "missing.jsonl"), "--domain", "retail"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_graph_exports_and_walks(tmp_path, capsys):
    import networkx as nx

    out = tmp_path / "retail.graphml"
    assert main(["graph", "--domain", "retail", "--format", "graphml", "--out", str(out)]) == 0
    graph = nx.read_graphml(out)
    assert graph.has_edge("get_order_details", "cancel_pending_order")
    capsys.readouterr()
    assert main(["graph", "--domain", "retail", "--format", "dot", "--walks", "3"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("digraph") and '"get_order_details" -> "cancel_pending_order"' in captured.out
    walks = [line for line in captured.err.splitlines() if line.startswith("walk: ")]
    assert len(walks) == 3
    assert main(["graph", "--domain", "retail", "--format", "graphml"]) == 2  # needs --out
    assert "needs --out" in capsys.readouterr().err


def test_context_is_reproducible_by_seed(capsys):
    assert main(["context", "--domain", "airline", "--seed", "7"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["context", "--domain", "airline", "--seed", "7"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert first["write_tools"] and set(first["write_tools"]) <= set(first["tools"])
    assert first["user_id"] and first["data"]


def test_validate_refuses_to_overwrite_its_input(tmp_path, capsys):
    source = tmp_path / "b.jsonl"
    source.write_text('{"id": "x"}\n')
    assert main(["validate", str(source), "--domain", "retail", "--out", str(source)]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert source.read_text() == '{"id": "x"}\n'


def test_validate_names_a_value_the_instruction_does_not_give_unless_told_not_to(tmp_path, capsys):
    actions = [{"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mia", "last_name": "Moore", "zip": "94180"}}]
    source = tmp_path / "two.jsonl"
    source.write_text("\n".join(json.dumps({"id": i, "domain": "retail", "instruction": text, "actions": actions, "outputs": []})
                                for i, text in (("said", "You are Mia Moore in 94180."), ("unsaid", "You are Mia."))) + "\n")
    assert main(["validate", str(source), "--domain", "retail"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(row["id"], row["stage"]) for row in rows] == [("said", "ok"), ("unsaid", "grounding")]
    assert rows[1]["reasons"] == [
        "line 2: actions[0] find_user_id_by_name_zip.last_name = 'Moore' is not obtainable: not said in the "
        "instruction, not returned by an earlier action, not found by 1 lookup, not fixed by the schema nor derived",
        "line 2: actions[0] find_user_id_by_name_zip.zip = '94180' is not obtainable: not said in the "
        "instruction, not returned by an earlier action, not found by 1 lookup, not fixed by the schema nor derived"]
    assert main(["validate", str(source), "--domain", "retail", "--no-grounding"]) == 0
    assert [json.loads(line)["stage"] for line in capsys.readouterr().out.splitlines()] == ["ok", "ok"]
