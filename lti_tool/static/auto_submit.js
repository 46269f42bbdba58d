// Submit the page's single form at once (the button stays for people without JavaScript).
document.forms[0].submit();
