// smemu console: a model.tar.gz goes from the browser straight to the bucket through a presigned URL, as
// Studio uploads; the bucket's CORS rules decide (the browser enforces them), and a refusal is explained.
"use strict";

const S3Upload = (() => {
  const {$, el, post} = Console.util;

  function send(url, file, bar, state) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open("PUT", url);
      request.upload.onprogress = event => { if (event.lengthComputable) bar.value = event.loaded; };
      request.onload = () => {
        if (request.status === 200) { bar.value = bar.max; state.textContent = "uploaded to the bucket"; resolve(); }
        else {
          state.textContent = `S3 answered ${request.status}`; state.className = "error";
          const said = /<Message>([^<]*)<\/Message>/.exec(request.responseText || "");  // S3's error, e.g. AccessDenied
          reject(new Error(said ? said[1] : state.textContent));
        }
      };
      // A cross-origin request the bucket's CORS rules refuse ends here, with no status: the browser blocked it.
      request.onerror = () => { state.textContent = "refused by the browser"; state.className = "error"; reject(new Error("cors")); };
      request.send(file);
    });
  }

  async function explain(bucket) {
    const {data} = await post("/console/api/cors-advice", {Bucket: bucket});
    $("#cors-message").textContent = data.Message;
    $("#cors-rule").textContent = JSON.stringify([data.Rule], null, 2);
    $("#cors-command").textContent = data.Command;
    $("#cors-advice").hidden = false;
  }

  // Uploads the archive chosen on the create page; resolves to its s3:// URI, or throws with the message to show.
  async function archive() {
    const file = ($("#archive").files || [])[0];
    if (!file) return null;
    const bucket = $("#Bucket").value.trim();
    $("#cors-advice").hidden = true;
    const shown = $('.uploads[data-slot="archive"]');
    const bar = el("progress", {max: Math.max(file.size, 1), value: 0});
    const state = el("span", {class: "upload-state"}, "uploading to the bucket");
    shown.replaceChildren(el("div", {class: "upload"}, el("span", {class: "mono"}, file.name), bar, state));
    const {ok, data} = await post("/console/api/presign", {Bucket: bucket, FileName: file.name});
    if (!ok) { state.textContent = ""; throw Object.assign(new Error(data.Message), {answer: data}); }
    try {
      await send(data.Url, file, bar, state);
    } catch (error) {
      if (error.message === "cors") {
        await explain(bucket);
        throw Object.assign(new Error("the bucket's CORS rules refused the upload"), {answer: {Field: "Bucket",
          Message: `The browser refused the upload to ${bucket}: see the CORS rule below.`}});
      }
      throw error;
    }
    return data.S3Uri;
  }

  return {archive};
})();
