// The drill form shows only the fields the chosen scenario uses (fields marked with
// data-scenarios); the others are hidden, and the server ignores them for that scenario.
(function () {
  const scenario = document.getElementById("id_scenario");
  if (!scenario) return;
  const fields = document.querySelectorAll("[data-scenarios]");
  function update() {
    for (const input of fields) {
      const wrapper = input.closest("div") || input;
      wrapper.hidden = !input.dataset.scenarios.split(" ").includes(scenario.value);
      input.disabled = wrapper.hidden;  // not submitted: a value the user cannot see never fails the form
    }
  }
  scenario.addEventListener("change", update);
  update();
})();
