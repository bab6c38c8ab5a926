"""The tree viewer of a real demo run: the written trees/step-N.jsonl follow docs/trees.schema.json
(checked by the jsonschema library), `treerpo-train view` prints the page's path, and the page, opened
from file:// in a real headless Chromium (Debian's chromium and chromedriver, driven by selenium), loads
without console errors and shows, for a selected step, tree and node, exactly that node's root-to-node
tokens as trees.jsonl lists them. A screenshot is left in TREERPO_ORACLE_DIR/viewer.png.

The run: demo-data's tiny random model, 2 steps of 2 prompts with configs/demo.yaml and trees logged
every step (about 10 s on 2 CPU cores). Random text rarely holds the demo's delimiters ("=", newline), so
the run splits after pieces ending in "n" or "s" instead: its trees branch below the root (about 20 nodes,
depth 3), and the checked path crosses several split points."""
import json
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

import jsonschema
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from oracle import CLI, ORACLE_DIR, SOURCE_DIR, jsonl, run_cli

SCHEMA = json.loads((SOURCE_DIR / "docs" / "trees.schema.json").read_text())
STEPS = 2
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


class DemoRun:
    """One short demo training run, shared by every test."""
    directory = None

    @classmethod
    def get(cls):
        if cls.directory is None:
            cls.directory = Path(tempfile.mkdtemp(prefix="treerpo_viewer_"))
            ws = cls.directory / "workspace"
            run_cli("demo-data", ws)
            run_cli("train", "--config", SOURCE_DIR / "configs" / "demo.yaml", "-q",
                    "--set", f"model.path={ws / 'model'}",
                    "--set", f"data.train={ws / 'data' / 'train.jsonl'}",
                    "--set", f"checkpoint.dir={cls.directory / 'run'}",
                    "--set", f"train.steps={STEPS}", "--set", "train.prompts_per_step=2",
                    "--set", "log.render_trees_every=1", "--set", "log.tensorboard=false",
                    "--set", 'rollout.delimiters=["n", "s"]', "--set", "rollout.max_depth=3",
                    "--set", "rollout.max_answer_tokens=32")
        return cls.directory / "run"

    @classmethod
    def trees(cls, step):
        return jsonl((cls.get() / "trees" / f"step-{step}.jsonl").read_text())


def tearDownModule():
    if DemoRun.directory is not None:
        shutil.rmtree(DemoRun.directory, ignore_errors=True)


class WrittenTrees(unittest.TestCase):
    def test_every_logged_step_follows_the_schema(self):
        validator = jsonschema.Draft202012Validator(SCHEMA)
        for step in range(1, STEPS + 1):
            trees = DemoRun.trees(step)
            self.assertEqual(len(trees), 2)  # prompts_per_step
            for tree in trees:
                errors = [e.message for e in validator.iter_errors(tree)]
                self.assertEqual(errors, [], f"step {step}")

    def test_per_token_arrays_agree_with_the_node(self):
        # What a JSON Schema cannot say: equal lengths, pieces that concatenate to the node's text,
        # branch tokens that are the children's first tokens, parents before children.
        for tree in DemoRun.trees(1):
            nodes = tree["nodes"]
            for n in nodes:
                self.assertEqual(len(n["pieces"]), len(n["token_ids"]))
                self.assertEqual(len(n["logprobs"]), len(n["token_ids"]))
                self.assertEqual("".join(n["pieces"]), n["text"])
                self.assertLess(n["parent"], n["id"])
                expected = [{"node": c, "token_id": nodes[c]["token_ids"][0],
                             "piece": nodes[c]["pieces"][0], "logprob": nodes[c]["logprobs"][0]}
                            for c in n["children"]]
                self.assertEqual(n["branch_tokens"], expected)


class ViewCommand(unittest.TestCase):
    def test_prints_the_index_path(self):
        run = DemoRun.get()
        printed = Path(run_cli("view", run).strip())
        self.assertEqual(printed, (run / "trees" / "index.html").resolve())
        self.assertTrue(printed.is_file())
        for step in range(1, STEPS + 1):
            self.assertTrue((run / "trees" / f"step-{step}.js").is_file())

    def test_a_folder_without_trees_is_one_line_and_exit_2(self):
        with tempfile.TemporaryDirectory() as empty:
            done = subprocess.run([CLI, "view", empty], capture_output=True, text=True)
        self.assertEqual(done.returncode, 2)
        self.assertEqual(len(done.stderr.strip().splitlines()), 1)
        self.assertIn("trees/step-N.jsonl", done.stderr)


def chromium():
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            raise AssertionError(f"{path} not found; run scripts/bootstrap.sh (it installs Debian's "
                                 "chromium and chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class ViewerInChromium(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.run_dir = DemoRun.get()
        cls.driver = chromium()

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()

    def click(self, css):
        """Clicks the first element matching CSS, found again if the page replaced it meanwhile."""
        def find_and_click(d):
            found = d.find_elements(By.CSS_SELECTOR, css)
            if not found:
                return False
            found[0].click()
            return True
        WebDriverWait(self.driver, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
            find_and_click)

    def wait_for_tree(self, step, tree=None):
        """Waits until the page shows STEP's trees (and tree TREE of them): a step's trees load
        asynchronously, and the page opens on the last step's, so a tree button found before that
        may be the wrong step's, or replaced under the click."""
        prefix = f"step {step}, tree " + ("" if tree is None else f"{tree}:")
        WebDriverWait(self.driver, 10).until(lambda d: d.execute_script(
            "const b = document.querySelector('#treeinfo b'); return b ? b.textContent : '';")
            .startswith(prefix))

    def test_selected_node_shows_its_tokens_from_trees_jsonl(self):
        d = self.driver
        d.get((self.run_dir / "trees" / "index.html").resolve().as_uri())
        # The largest tree of step 1, and its deepest leaf: the path crosses the most split points.
        step = 1
        trees = DemoRun.trees(step)
        tree_index = max(range(len(trees)), key=lambda i: len(trees[i]["nodes"]))
        tree = trees[tree_index]
        leaf = max((n for n in tree["nodes"] if n["leaf"]), key=lambda n: n["depth"])
        self.assertGreaterEqual(leaf["depth"], 2)
        self.click(f'#steps button[data-step="{step}"]')
        self.wait_for_tree(step)
        self.click(f'#trees button[data-tree="{tree_index}"]')
        self.wait_for_tree(step, tree_index)
        self.click(f'#graph .node[data-node="{leaf["id"]}"] circle')
        WebDriverWait(d, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#tokens .tok"))

        path = []
        node = leaf["id"]
        while node > 0:
            path.insert(0, node)
            node = tree["nodes"][node]["parent"]
        expected = [(str(n), str(i), str(tree["nodes"][n]["token_ids"][i]),
                     tree["nodes"][n]["pieces"][i])
                    for n in path for i in range(len(tree["nodes"][n]["token_ids"]))]
        shown = d.execute_script(
            "return [...document.querySelectorAll('#tokens .tok')].map(t => [t.dataset.node, "
            "t.dataset.i, t.dataset.id, t.textContent]);")
        self.assertEqual([tuple(t) for t in shown], expected)
        # One split marker where each node on the path starts a branch of a split.
        splits = sum(1 for n in path if len(tree["nodes"][tree["nodes"][n]["parent"]]["children"]) > 1)
        self.assertEqual(len(d.find_elements(By.CSS_SELECTOR, "#tokens .split")), splits)
        # The leaf's extracted answer beside the gold.
        answer = leaf["answer"] if leaf["answer"] is not None else "(none: no \\boxed{})"
        self.assertEqual(d.find_element(By.ID, "extracted").text, answer)
        self.assertEqual(d.find_element(By.ID, "gold").text, tree["gold_answer"])

        # The entropy shading: only tokens drawn at a split point carry a measured entropy.
        self.click("#shade-entropy")
        shaded = d.execute_script(
            "return [...document.querySelectorAll('#tokens .tok')].filter(t => t.style.background)"
            ".map(t => [t.dataset.node, t.dataset.i]);")
        expected_shaded = [[str(n), "0"] for n in path
                           if tree["nodes"][tree["nodes"][n]["parent"]]["split_entropy"] is not None]
        self.assertEqual(shaded, expected_shaded)
        self.click("#shade-logprob")

        ORACLE_DIR.mkdir(parents=True, exist_ok=True)
        d.save_screenshot(str(ORACLE_DIR / "viewer.png"))
        errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
        self.assertEqual(errors, [])


if __name__ == "__main__":
    unittest.main()
