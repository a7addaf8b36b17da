"""Secrets never leave the process: credentials in a URI are redacted from every param,
tag and logged file."""

from __future__ import annotations

from pathlib import Path

from digits_nn.config import parse
from digits_nn.pipeline import recording
from digits_nn.pipeline.recording import new_run
from digits_nn.tracking import runs
from digits_nn.tracking.store import Store
from helpers import tiny_run_data

SECRET = "s3cret-do-not-log"
URI = f"http://alice:{SECRET}@127.0.0.1:5999"


def test_a_uri_with_credentials_reaches_no_param_tag_or_logged_file(tmp_path: Path, store) -> None:
    """A config may not hold credentials, but MLFLOW_TRACKING_URI may: any param, tag or
    logged text file that quotes such a URI (an error, a copied setting) has it
    redacted on its way to the store."""
    cfg = parse({})
    params_file = tmp_path / "params.yaml"
    params_file.write_text(f"store: {URI}\n")
    tags = {"error": f"cannot reach {URI}"}
    with new_run(store, cfg, tiny_run_data(), tags) as run:
        recording.record_config(run, cfg, params_file)
        run.params({"store": URI})
        run.tag("store", URI)
        store.client.log_param(run.run_id, "server", URI)
    logged = store.client.get_run(run.run_id)
    assert logged.data.params["store"] == "http://alice:***@127.0.0.1:5999"
    assert logged.data.params["server"] == "http://alice:***@127.0.0.1:5999"
    assert logged.data.tags["store"] == "http://alice:***@127.0.0.1:5999"
    assert logged.data.tags["error"] == "cannot reach http://alice:***@127.0.0.1:5999"
    assert SECRET not in str(logged.data.params) + str(logged.data.tags)
    copy = Path(store.client.download_artifacts(run.run_id, "params.yaml", str(tmp_path / "dl")))
    assert SECRET not in copy.read_text()
    assert "alice:***@127.0.0.1" in copy.read_text()
    assert SECRET in params_file.read_text()  # the user's own file is left as it was


def test_credentials_in_the_tracking_uri_reach_no_param_of_the_logged_model(
    tmp_path: Path, store
) -> None:
    """The logged model carries the run's params: redacted as the run's are."""
    from digits_nn.data import steps
    from helpers import saved_model

    saved_model(tmp_path)  # writes tmp_path/model.npz
    # The config refuses such a URI; set behind its back, the logged model still hides it.
    cfg = parse({})
    cfg.tracking.uri = URI
    scaled = steps.standardise(steps.load_digits())
    with new_run(store, cfg, tiny_run_data()) as run:
        model_id = recording.record_model(run, cfg, tmp_path / "model.npz", scaled)
    model = store.client.get_logged_model(model_id)
    assert model.params["tracking.uri"] == "http://alice:***@127.0.0.1:5999"
    assert SECRET not in str(model.params) + str(model.tags)


def test_a_logged_folders_text_files_reach_the_store_without_credentials(
    tmp_path: Path, store: Store
) -> None:
    """A folder logged whole (``log_artifacts``) is scanned as a single file is: every
    text file in it, at any depth and of every text suffix, arrives with the password
    redacted; other files arrive byte for byte, and the user's folder is left as it was."""
    folder = tmp_path / "reports"
    # One file of each text suffix, and one two levels down.
    suffixes = (".yaml", ".yml", ".json", ".csv", ".md", ".txt", ".log")
    texts = {f"quoted{suffix}": f"store = {URI}\n" for suffix in suffixes}
    texts["deep/er/run.log"] = f"cannot reach {URI}/api\nretrying\n"
    texts["clean.txt"] = "no URI here\n"
    for name, text in texts.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    picture = bytes(range(256))  # not text: never rewritten
    (folder / "plot.png").write_bytes(picture)

    with runs.run(store) as run:
        store.client.log_artifacts(run.run_id, str(folder), "reports")
    copy = Path(store.client.download_artifacts(run.run_id, "reports", str(tmp_path / "dl")))

    arrived = {p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()}
    assert arrived == {*texts, "plot.png"}
    for name, text in texts.items():
        assert (copy / name).read_text() == text.replace(SECRET, "***"), name
    assert (copy / "quoted.yaml").read_text() == "store = http://alice:***@127.0.0.1:5999\n"
    assert (copy / "plot.png").read_bytes() == picture
    for name, text in texts.items():  # the user's own files are left as they were
        assert (folder / name).read_text() == text


def test_a_logged_folder_without_credentials_arrives_as_it_is(tmp_path: Path, store: Store) -> None:
    folder = tmp_path / "plain"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.md").write_text("http://127.0.0.1:5999 holds no password\n")
    (folder / "sub/table.csv").write_text("a,b\n1,2\n")
    with runs.run(store) as run:
        store.client.log_artifacts(run.run_id, str(folder))
    copy = Path(store.client.download_artifacts(run.run_id, "", str(tmp_path / "dl")))
    assert (copy / "notes.md").read_text() == "http://127.0.0.1:5999 holds no password\n"
    assert (copy / "sub/table.csv").read_text() == "a,b\n1,2\n"


def test_a_params_options_reach_mlflow_with_its_value_redacted(store: Store) -> None:
    """MLflow's own options of ``log_param`` (here: logging it asynchronously, which
    returns the operation to await instead of the value) pass through unchanged."""
    from mlflow.utils.async_logging.run_operations import RunOperations

    run_id = store.client.create_run(store.experiment_id).info.run_id
    operation = store.client.log_param(run_id, "server", URI, synchronous=False)
    assert isinstance(operation, RunOperations)
    operation.wait()
    logged = store.client.get_run(run_id)
    assert logged.data.params == {"server": "http://alice:***@127.0.0.1:5999"}
