// The editor's own chat model as the loop's edit step (agent.kind "editor"): the daemon asks
// (autoresearch/editorEdit) and this sends its prompt to the model chosen in Start Loop through
// VS Code's Language Model API, and answers with the whole reply and its token counts. The
// daemon parses and applies the edits; every way of not answering says which (no model,
// consent refused, failed), so the loop stops with that message.
import * as vscode from "vscode";
import type { EditorEditParams, EditorEditResult } from "./protocol";

const JUSTIFICATION = "Autoresearch sends the model you chose one prompt per experiment and applies the edits it replies with.";

function selector(vendor: string, family: string | null): vscode.LanguageModelChatSelector {
  return family ? { vendor, family } : { vendor };
}

function named(model: vscode.LanguageModelChat): string {
  return `${model.vendor}/${model.family}`;
}

async function count(model: vscode.LanguageModelChat, text: string, token: vscode.CancellationToken): Promise<number | null> {
  try {
    return await model.countTokens(text, token);
  } catch {
    return null; // not every provider counts: the experiment records none
  }
}

/** Answer one editorEdit request: the model's reply, or the problem that prevents one. */
export async function editorEdit(params: EditorEditParams, token: vscode.CancellationToken): Promise<EditorEditResult> {
  const wanted = params.family ? `vendor "${params.vendor}", family "${params.family}"` : `vendor "${params.vendor}"`;
  let models: vscode.LanguageModelChat[];
  try {
    models = await vscode.lm.selectChatModels(selector(params.vendor, params.family));
  } catch (error) {
    return { problem: "failed", message: `selecting the model failed: ${String(error)}` };
  }
  const model = models[0];
  if (!model) return { problem: "no_model", message: `no chat model of ${wanted} is available in this VS Code window` };
  try {
    // The first request asks the user's consent (VS Code's dialog); a refusal is NoPermissions.
    const response = await model.sendRequest(
      [vscode.LanguageModelChatMessage.User(params.prompt)],
      { justification: JUSTIFICATION },
      token,
    );
    let text = "";
    for await (const chunk of response.text) text += chunk;
    return {
      text,
      tokens_in: await count(model, params.prompt, token),
      tokens_out: await count(model, text, token),
      model: named(model),
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof vscode.LanguageModelError) {
      if (error.code === vscode.LanguageModelError.NoPermissions.name) return { problem: "consent", message };
      if (error.code === vscode.LanguageModelError.NotFound.name) return { problem: "no_model", message };
    }
    return { problem: "failed", message: `${named(model)}: ${message}` };
  }
}
