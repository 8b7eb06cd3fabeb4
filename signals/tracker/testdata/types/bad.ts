/// <reference path="../../tracker.d.ts" />
// Each line is a mistake the declarations catch.
kairos.track(42);
kairos.identify(7);
kairos.consent('yes');
kairos.on('click', () => {});
kairos.track('view', { value: 'high' });
export {};
