// Which Python runs the daemon: the `autoresearch.python` setting, else the Python extension's
// active interpreter, else a .venv in the workspace folder, else `python3`. Checks that it can
// import `autoresearch` and offers to install it (pip install -e <this project> or from PyPI).
import { spawn } from "node:child_process";
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";
import * as vscode from "vscode";
import { checkImport, findBundledWheel, folderVenvPython, installPlan } from "./pythonCheck";

export interface PythonChoice {
  path: string;
  source: "setting" | "python extension" | "workspace .venv" | "default";
}

/** The part of the Python extension's API used here (ms-python.python, `environments`). */
interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { id: string; path: string };
    resolveEnvironment(
      environment: { id: string; path: string } | string,
    ): Promise<{ executable: { uri?: vscode.Uri } } | undefined>;
    onDidChangeActiveEnvironmentPath: vscode.Event<unknown>;
  };
}

const PYTHON_EXTENSION = "ms-python.python";

async function pythonExtensionApi(): Promise<PythonExtensionApi | undefined> {
  const extension = vscode.extensions.getExtension<unknown>(PYTHON_EXTENSION);
  if (!extension) return undefined;
  try {
    const exports = extension.isActive ? extension.exports : await extension.activate();
    return exports as PythonExtensionApi;
  } catch {
    return undefined;
  }
}

/** Calls `listener` when the Python extension's selected interpreter changes. */
export async function onInterpreterChange(listener: () => void): Promise<vscode.Disposable> {
  const api = await pythonExtensionApi();
  return api?.environments?.onDidChangeActiveEnvironmentPath(() => listener()) ?? new vscode.Disposable(() => {});
}

function expand(setting: string, folder: vscode.WorkspaceFolder | undefined): string {
  let path = setting.trim();
  if (folder) path = path.replace(/\$\{workspaceFolder\}/g, folder.uri.fsPath);
  if (path.startsWith("~/")) path = join(homedir(), path.slice(2));
  if (folder && !isAbsolute(path) && (path.includes("/") || path.includes("\\"))) {
    path = join(folder.uri.fsPath, path);
  }
  return path;
}

export async function findPython(folder: vscode.WorkspaceFolder | undefined): Promise<PythonChoice> {
  const setting = vscode.workspace.getConfiguration("autoresearch", folder?.uri).get<string>("python", "");
  if (setting.trim()) return { path: expand(setting, folder), source: "setting" };
  const api = await pythonExtensionApi();
  if (api?.environments) {
    try {
      const active = api.environments.getActiveEnvironmentPath(folder?.uri);
      const resolved = await api.environments.resolveEnvironment(active);
      const path = resolved?.executable.uri?.fsPath ?? active.path;
      if (path) return { path, source: "python extension" };
    } catch {
      // fall through to the defaults
    }
  }
  const venv = folder ? folderVenvPython(folder.uri.fsPath) : undefined;
  if (venv) return { path: venv, source: "workspace .venv" };
  return { path: process.platform === "win32" ? "python" : "python3", source: "default" };
}

/** Runs pip in the interpreter, streaming its output into the log. */
function runPip(python: string, args: string[], cwd: string | undefined, log: vscode.LogOutputChannel) {
  return new Promise<boolean>((resolve) => {
    log.info(`Running ${python} ${args.join(" ")}`);
    const child = spawn(python, args, { cwd, windowsHide: true });
    const forward = (data: Buffer) => {
      for (const line of data.toString().split(/\r?\n/)) if (line.trim()) log.info(`pip: ${line}`);
    };
    child.stdout.on("data", forward);
    child.stderr.on("data", forward);
    child.on("error", (error) => {
      log.error(`pip failed to start: ${error.message}`);
      resolve(false);
    });
    child.on("close", (code) => resolve(code === 0));
  });
}

/**
 * An interpreter that can import `autoresearch`, asking the user (install / pick another / open
 * settings) when the found one cannot. Undefined when there is none (the user was told why).
 */
export async function usablePython(
  folder: vscode.WorkspaceFolder | undefined,
  log: vscode.LogOutputChannel,
  interactive: boolean,
  extensionPath: string,
): Promise<string | undefined> {
  const choice = await findPython(folder);
  const cwd = folder?.uri.fsPath;
  const check = await checkImport(choice.path, { cwd });
  if (check.ok) {
    log.info(`Python: ${choice.path} (${choice.source}), autoresearch ${check.version}`);
    return choice.path;
  }
  log.warn(`Python ${choice.path} (${choice.source}) cannot run the daemon: ${check.detail}`);
  if (!interactive) return undefined;
  const pick = vscode.extensions.getExtension(PYTHON_EXTENSION) ? "Select Interpreter" : undefined;
  const settings = "Open Settings";
  if (check.reason === "no-python") {
    const answer = await vscode.window.showErrorMessage(
      `Autoresearch: the Python interpreter "${choice.path}" (${choice.source}) could not be run. ` +
        "Set autoresearch.python to a Python 3.10+ interpreter.",
      ...[settings, pick].filter((x): x is string => !!x),
    );
    await followUp(answer, settings, pick);
    return undefined;
  }
  const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  const plan = installPlan(folders, findBundledWheel(extensionPath));
  const install = plan ? `Install (${plan.label})` : undefined;
  const answer = await vscode.window.showWarningMessage(
    `Autoresearch: the daemon package "autoresearch" is not installed for ${choice.path} (${choice.source}).` +
      (plan ? "" : " Install it with pip from a checkout of this project (pip install <checkout>)."),
    ...[install, pick, settings].filter((x): x is string => !!x),
  );
  if (!plan || answer !== install) {
    await followUp(answer, settings, pick);
    return undefined;
  }
  const ok = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Autoresearch: ${plan.label}` },
    () => runPip(choice.path, plan.args, cwd, log),
  );
  const after = ok ? await checkImport(choice.path, { cwd }) : undefined;
  if (after?.ok) {
    log.info(`Installed autoresearch ${after.version} for ${choice.path}`);
    return choice.path;
  }
  const show = "Show Log";
  if ((await vscode.window.showErrorMessage(`Autoresearch: ${plan.label} failed; see the log.`, show)) === show) {
    log.show();
  }
  return undefined;
}

async function followUp(answer: string | undefined, settings: string, pick: string | undefined) {
  if (answer === settings) {
    await vscode.commands.executeCommand("workbench.action.openSettings", "autoresearch.python");
  } else if (answer && answer === pick) {
    await vscode.commands.executeCommand("python.setInterpreter");
  }
}
