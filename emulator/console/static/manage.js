// smemu console: deleting models and endpoints (DeleteModel, DeleteEndpoint, as boto3 sends them),
// each after the browser's confirmation.
"use strict";

const Manage = (() => {
  const {$, $$, aws} = Console.util;

  async function remove(operation, params, question) {
    if (!confirm(question)) return false;
    $("#form-error").textContent = "";
    try {
      await aws("sagemaker", operation, params);
      return true;
    } catch (error) {
      $("#form-error").textContent = error.message;
      return false;
    }
  }

  function modelsPage() {
    const button = $("#delete-selected");
    const selected = () => $$(".select-model:checked").map(box => box.value);
    $$(".select-model").forEach(box => box.addEventListener("change", () => { button.disabled = selected().length === 0; }));
    button.addEventListener("click", async () => {
      const names = selected();
      if (!confirm(`Delete model${names.length > 1 ? "s" : ""} ${names.join(", ")}? Endpoints already running them keep running.`)) return;
      const deleted = [];
      for (const name of names) {
        try { await aws("sagemaker", "DeleteModel", {ModelName: name}); deleted.push(name); }
        catch (error) { $("#form-error").textContent = `${name}: ${error.message}`; }
      }
      if (deleted.length === names.length) location.href = "/console/models?" + deleted.map(n => "deleted=" + encodeURIComponent(n)).join("&");
      else if (deleted.length) setTimeout(() => location.reload(), 3000);
    });
  }

  function modelPage() {
    const button = $("#delete-model");
    button.addEventListener("click", async () => {
      const name = button.dataset.model;
      if (await remove("DeleteModel", {ModelName: name}, `Delete model ${name}? Endpoints already running it keep running.`)) {
        location.href = "/console/models?deleted=" + encodeURIComponent(name);
      }
    });
  }

  async function deleteEndpoint(name) {
    if (await remove("DeleteEndpoint", {EndpointName: name}, `Delete endpoint ${name}? Its copies stop; its endpoint configuration and models are kept.`)) {
      location.href = "/console/endpoints?deleted=" + encodeURIComponent(name);
    }
  }

  function endpointsPage() {
    $$(".delete-endpoint").forEach(button => button.addEventListener("click", () => deleteEndpoint(button.dataset.endpoint)));
  }

  function endpointPage(name) {
    $("#delete-endpoint").addEventListener("click", () => deleteEndpoint(name));
  }

  return {modelsPage, modelPage, endpointsPage, endpointPage};
})();
